#include "tests/test_util/cnn_description.h"
#include "agent/search.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "agent/budget.h"
#include "agent/environment.h"
#include "common/policy.h"
#include "google/protobuf/util/message_differencer.h"

namespace shrink::agent {
namespace {

using ::testing::HasSubstr;

// The Fashion-MNIST CNN as the worker describes it.
v1::ModelDescription Cnn() { return testing::CnnDescription(); }

SearchContext Context(double target_size, int budget, uint64_t seed = 1) {
  SearchContext context;
  context.model = Cnn();
  context.goal.set_target_size(target_size);
  context.goal.set_min_retention(0.95);
  context.budget = budget;
  context.seed = seed;
  return context;
}

std::unique_ptr<Search> Make(const std::string& name, const SearchContext& context) {
  auto search = MakeSearch(name, context);
  EXPECT_TRUE(search.ok()) << search.status();
  return search.ok() ? std::move(*search) : nullptr;
}

std::vector<v1::LayerAction> Actions(const v1::Policy& policy) {
  return {policy.layers().begin(), policy.layers().end()};
}

double Ratio(const v1::Policy& policy) { return EstimateSizeRatio(Cnn(), Actions(policy)); }

bool SamePolicy(const v1::Policy& a, const v1::Policy& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

// ---- MakeSearch ----

TEST(MakeSearchTest, BuildsUniform) {
  auto search = MakeSearch("uniform", Context(0.5, 4));
  ASSERT_TRUE(search.ok()) << search.status();
  EXPECT_EQ((*search)->name(), "uniform");
}

TEST(MakeSearchTest, BuildsRandom) {
  auto search = MakeSearch("random", Context(0.5, 4));
  ASSERT_TRUE(search.ok()) << search.status();
  EXPECT_EQ((*search)->name(), "random");
}

TEST(MakeSearchTest, UnknownNameIsInvalidArgumentNamingIt) {
  auto search = MakeSearch("simulated-annealing", Context(0.5, 4));
  ASSERT_FALSE(search.ok());
  EXPECT_EQ(search.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(search.status().message(), HasSubstr("simulated-annealing"));
}

TEST(MakeSearchTest, BuildsDdpg) {
  auto search = MakeSearch("ddpg", Context(0.5, 4));
  ASSERT_TRUE(search.ok()) << search.status();
  EXPECT_EQ((*search)->name(), "ddpg");
}

TEST(MakeSearchTest, OnlyDdpgAcceptsAnInitialAgent) {
  SearchContext context = Context(0.5, 4);
  context.init_state = "bytes";
  auto search = MakeSearch("random", context);
  ASSERT_FALSE(search.ok());
  EXPECT_EQ(search.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(search.status().message(), HasSubstr("only ddpg"));
}

TEST(MakeSearchTest, ModelWithoutLayersIsInvalidArgument) {
  SearchContext context = Context(0.5, 4);
  context.model.clear_layers();
  auto search = MakeSearch("uniform", context);
  ASSERT_FALSE(search.ok());
  EXPECT_EQ(search.status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- Properties every search keeps ----

class EverySearchTest : public ::testing::TestWithParam<std::string> {};

TEST_P(EverySearchTest, ProposalsHaveOneActionPerLayerInModelOrder) {
  auto search = Make(GetParam(), Context(0.25, 10));
  ASSERT_NE(search, nullptr);
  for (int i = 0; i < 10; ++i) {
    v1::Policy policy = search->Propose();
    EXPECT_FALSE(policy.has_uniform());
    ASSERT_EQ(policy.layers_size(), 4);
    EXPECT_EQ(policy.layers(0).name(), "conv1");
    EXPECT_EQ(policy.layers(1).name(), "conv2");
    EXPECT_EQ(policy.layers(2).name(), "fc1");
    EXPECT_EQ(policy.layers(3).name(), "fc2");
  }
}

TEST_P(EverySearchTest, ProposalsResolveAgainstTheModel) {
  for (double target : {1.0, 0.5, 0.25, 0.1, 0.05, 0.01}) {
    auto search = Make(GetParam(), Context(target, 12, 42));
    ASSERT_NE(search, nullptr);
    for (int i = 0; i < 12; ++i) {
      v1::Policy policy = search->Propose();
      auto resolved = ResolvePolicy(policy, Cnn());
      EXPECT_TRUE(resolved.ok()) << "target " << target << " #" << i << ": " << resolved.status() << "\n"
                                 << PolicySummary(policy);
    }
  }
}

TEST_P(EverySearchTest, ProposalsFitTheSizeTargetByTheEstimate) {
  for (double target : {0.9, 0.5, 0.3, 0.25, 0.1, 0.05, 0.01}) {
    auto search = Make(GetParam(), Context(target, 15, 7));
    ASSERT_NE(search, nullptr);
    for (int i = 0; i < 15; ++i) {
      v1::Policy policy = search->Propose();
      EXPECT_LE(Ratio(policy), target) << "target " << target << " #" << i << ": " << PolicySummary(policy);
    }
  }
}

TEST_P(EverySearchTest, NeverPrunesTheOutputLayer) {
  auto search = Make(GetParam(), Context(0.05, 10));
  ASSERT_NE(search, nullptr);
  for (int i = 0; i < 10; ++i) EXPECT_DOUBLE_EQ(search->Propose().layers(3).prune(), 0.0);
}

TEST_P(EverySearchTest, ImpossibleTargetStillGivesValidPolicies) {
  auto search = Make(GetParam(), Context(0.001, 3));
  ASSERT_NE(search, nullptr);
  for (int i = 0; i < 3; ++i) {
    v1::Policy policy = search->Propose();
    ASSERT_EQ(policy.layers_size(), 4);
    EXPECT_TRUE(ResolvePolicy(policy, Cnn()).ok()) << PolicySummary(policy);
  }
}

TEST_P(EverySearchTest, ObserveAcceptsResultsInAnyOrder) {
  auto search = Make(GetParam(), Context(0.25, 4));
  ASSERT_NE(search, nullptr);
  v1::Policy a = search->Propose();
  v1::Policy b = search->Propose();
  v1::Evaluation evaluation;
  evaluation.set_retention(0.97);
  evaluation.set_size_ratio(0.2);
  search->Observe(b, evaluation, 1.0);
  search->Observe(a, evaluation, 0.5);
  v1::Policy c = search->Propose();
  EXPECT_EQ(c.layers_size(), 4);
}

INSTANTIATE_TEST_SUITE_P(Searches, EverySearchTest,
                         ::testing::Values("uniform", "random", "evolution", "ddpg"),
                         [](const auto& info) { return info.param; });

// ---- Random ----

TEST(RandomSearchTest, SameSeedGivesSameSequence) {
  auto a = Make("random", Context(0.25, 10, 123));
  auto b = Make("random", Context(0.25, 10, 123));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  for (int i = 0; i < 10; ++i) {
    v1::Policy pa = a->Propose();
    v1::Policy pb = b->Propose();
    EXPECT_TRUE(SamePolicy(pa, pb)) << i << ": " << PolicySummary(pa) << " vs " << PolicySummary(pb);
  }
}

TEST(RandomSearchTest, DifferentSeedsGiveDifferentSequences) {
  auto a = Make("random", Context(0.5, 5, 1));
  auto b = Make("random", Context(0.5, 5, 2));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  int differing = 0;
  for (int i = 0; i < 5; ++i) differing += SamePolicy(a->Propose(), b->Propose()) ? 0 : 1;
  EXPECT_GT(differing, 0);
}

TEST(RandomSearchTest, ProposalsVaryWithinASeed) {
  auto search = Make("random", Context(0.5, 8, 5));
  ASSERT_NE(search, nullptr);
  std::set<std::string> distinct;
  for (int i = 0; i < 8; ++i) distinct.insert(PolicyToJson(search->Propose()));
  EXPECT_GT(distinct.size(), 1u);
}

TEST(RandomSearchTest, UsesOnlySupportedBitWidths) {
  auto search = Make("random", Context(0.9, 30, 9));
  ASSERT_NE(search, nullptr);
  for (int i = 0; i < 30; ++i) {
    v1::Policy policy = search->Propose();
    for (const auto& a : policy.layers()) {
      EXPECT_THAT(kActionBitLevels, ::testing::Contains(a.bits())) << a.bits();
      EXPECT_GE(a.prune(), 0.0);
      EXPECT_LE(a.prune(), kMaxPrune);
    }
  }
}

// ---- Uniform ----

TEST(UniformSearchTest, ProposalsAreUniform) {
  auto search = Make("uniform", Context(0.25, 10));
  ASSERT_NE(search, nullptr);
  for (int i = 0; i < 10; ++i) {
    v1::Policy policy = search->Propose();
    ASSERT_EQ(policy.layers_size(), 4);
    for (int l = 1; l < 4; ++l) EXPECT_EQ(policy.layers(l).bits(), policy.layers(0).bits()) << i;
    EXPECT_DOUBLE_EQ(policy.layers(1).prune(), policy.layers(0).prune()) << i;
    EXPECT_DOUBLE_EQ(policy.layers(2).prune(), policy.layers(0).prune()) << i;
    EXPECT_DOUBLE_EQ(policy.layers(3).prune(), 0.0) << i;
  }
}

TEST(UniformSearchTest, GoesFromGentlestToMoreAggressive) {
  auto search = Make("uniform", Context(0.25, 8));
  ASSERT_NE(search, nullptr);
  std::vector<double> ratios;
  for (int i = 0; i < 8; ++i) ratios.push_back(Ratio(search->Propose()));
  for (size_t i = 1; i < ratios.size(); ++i) EXPECT_LE(ratios[i], ratios[i - 1]) << i;
  EXPECT_LT(ratios.back(), ratios.front());
}

TEST(UniformSearchTest, FullTargetStartsWithTheUnchangedModel) {
  auto search = Make("uniform", Context(1.0, 5));
  ASSERT_NE(search, nullptr);
  v1::Policy first = search->Propose();
  for (const auto& a : first.layers()) {
    EXPECT_EQ(a.bits(), 32) << a.name();
    EXPECT_DOUBLE_EQ(a.prune(), 0.0) << a.name();
  }
  EXPECT_DOUBLE_EQ(Ratio(first), 1.0);
}

TEST(UniformSearchTest, FirstProposalIsTheLargestUniformSettingThatFits) {
  // For 0.5: fp32 with 30% pruning (~0.496, config entries of 3 pruned layers included) is
  // larger than fp16 with 5% (~0.455) or int8 unpruned (~0.251); fp32 with 25% pruning
  // (~0.56) does not fit.
  auto search = Make("uniform", Context(0.5, 5));
  ASSERT_NE(search, nullptr);
  v1::Policy first = search->Propose();
  EXPECT_EQ(first.layers(0).bits(), 32);
  EXPECT_NEAR(first.layers(0).prune(), 0.30, 1e-9);
  EXPECT_NEAR(Ratio(first), 0.4955, 1e-4);
}

TEST(UniformSearchTest, LastProposalOfAFullBudgetIsTheMostAggressive) {
  // A budget larger than the grid walks every fitting setting; the last is 4 bits at 90%.
  auto search = Make("uniform", Context(0.25, 1000));
  ASSERT_NE(search, nullptr);
  v1::Policy previous = search->Propose();
  v1::Policy last = previous;
  for (int i = 1; i < 200; ++i) {
    v1::Policy next = search->Propose();
    if (Ratio(next) > Ratio(previous)) break;  // wrapped around to the start
    last = next;
    previous = next;
  }
  EXPECT_EQ(last.layers(0).bits(), 4);
  EXPECT_NEAR(last.layers(0).prune(), kMaxPrune, 1e-9);
}

TEST(UniformSearchTest, BudgetOfOneProposesTheGentlestAgainAndAgain) {
  auto search = Make("uniform", Context(1.0, 1));
  ASSERT_NE(search, nullptr);
  v1::Policy first = search->Propose();
  v1::Policy second = search->Propose();
  EXPECT_TRUE(SamePolicy(first, second));
  EXPECT_DOUBLE_EQ(Ratio(first), 1.0);
}

TEST(UniformSearchTest, ProposalsAreDistinctWithinTheBudget) {
  auto search = Make("uniform", Context(0.25, 6));
  ASSERT_NE(search, nullptr);
  std::set<std::string> distinct;
  for (int i = 0; i < 6; ++i) distinct.insert(PolicyToJson(search->Propose()));
  EXPECT_EQ(distinct.size(), 6u);
}

TEST(UniformSearchTest, ImpossibleTargetProposesTheMostAggressiveSetting) {
  auto search = Make("uniform", Context(0.001, 3));
  ASSERT_NE(search, nullptr);
  v1::Policy policy = search->Propose();
  for (int l = 0; l < 3; ++l) {
    EXPECT_EQ(policy.layers(l).bits(), 4);
    EXPECT_DOUBLE_EQ(policy.layers(l).prune(), kMaxPrune);
  }
  EXPECT_EQ(policy.layers(3).bits(), 4);
  EXPECT_DOUBLE_EQ(policy.layers(3).prune(), 0.0);
}

}  // namespace
}  // namespace shrink::agent
