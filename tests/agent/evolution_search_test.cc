// The evolutionary search: valid proposals, determinism per seed, selection
// pressure towards what the reward prefers, and results in any order.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "agent/budget.h"
#include "agent/environment.h"
#include "agent/search.h"
#include "common/policy.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/test_util/cnn_description.h"

namespace shrink::agent {
namespace {

using ::testing::HasSubstr;

// A synthetic reward: what a test wants the search to learn.
using RewardFn = std::function<double(const v1::Policy&)>;

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

std::unique_ptr<Search> MakeEvolution(const SearchContext& context) {
  auto search = MakeSearch("evolution", context);
  EXPECT_TRUE(search.ok()) << search.status();
  return search.ok() ? std::move(*search) : nullptr;
}

double Ratio(const v1::Policy& policy) {
  return EstimateSizeRatio(Cnn(), {policy.layers().begin(), policy.layers().end()});
}

bool SamePolicy(const v1::Policy& a, const v1::Policy& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

// Prefers little pruning of conv1 (best reward 0 at prune 0).
double PreferUnprunedConv1(const v1::Policy& policy) { return -policy.layers(0).prune(); }

// Prefers conv2 at full precision.
double PreferFullPrecisionConv2(const v1::Policy& policy) {
  return policy.layers(1).bits() == 32 ? 1.0 : 0.0;
}

// A reward that differs for (practically) every policy, so ties never decide.
double DistinctReward(const v1::Policy& policy) {
  double reward = 0;
  for (int i = 0; i < policy.layers_size(); ++i) {
    reward += (i + 1) * policy.layers(i).prune() + 0.001 * (i + 1) * policy.layers(i).bits();
  }
  return reward;
}

v1::Evaluation SomeEvaluation() {
  v1::Evaluation evaluation;
  evaluation.set_retention(0.97);
  evaluation.set_size_ratio(0.2);
  return evaluation;
}

// Proposes `count` policies, observing each before the next, as a scheduler
// with one slot would.
std::vector<v1::Policy> ProposeAndObserve(Search* search, int count, const RewardFn& reward) {
  std::vector<v1::Policy> proposals;
  for (int i = 0; i < count; ++i) {
    proposals.push_back(search->Propose());
    search->Observe(proposals.back(), SomeEvaluation(), reward(proposals.back()));
  }
  return proposals;
}

// Checks everything a proposal must satisfy; the message says what failed.
void ExpectValid(const v1::Policy& policy, double target, const std::string& where) {
  SCOPED_TRACE(where + ": " + PolicySummary(policy));
  EXPECT_FALSE(policy.has_uniform());
  ASSERT_EQ(policy.layers_size(), 4);
  EXPECT_EQ(policy.layers(0).name(), "conv1");
  EXPECT_EQ(policy.layers(1).name(), "conv2");
  EXPECT_EQ(policy.layers(2).name(), "fc1");
  EXPECT_EQ(policy.layers(3).name(), "fc2");
  auto resolved = ResolvePolicy(policy, Cnn());
  EXPECT_TRUE(resolved.ok()) << resolved.status();
  for (const auto& action : policy.layers()) {
    EXPECT_THAT(kActionBitLevels, ::testing::Contains(action.bits())) << action.bits();
    EXPECT_GE(action.prune(), 0.0);
    EXPECT_LE(action.prune(), kMaxPrune);
    EXPECT_EQ(action.distill(), kBaselineDistill);
  }
  EXPECT_EQ(policy.layers(3).prune(), 0.0);  // the output layer is not prunable
  EXPECT_LE(Ratio(policy), target);
}

// ---- MakeSearch ----

TEST(EvolutionSearchTest, MakeSearchBuildsEvolution) {
  auto search = MakeSearch("evolution", Context(0.5, 8));
  ASSERT_TRUE(search.ok()) << search.status();
  EXPECT_EQ((*search)->name(), "evolution");
}

TEST(EvolutionSearchTest, ErrorsListEvolutionAmongTheKnownMethods) {
  auto unknown = MakeSearch("annealing", Context(0.5, 8));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("ddpg, uniform, random or evolution"));
}

// ---- Validity ----

TEST(EvolutionSearchTest, ProposalsAreValidAndFitTheTarget) {
  // 40 rounds with budget 40: a population of 10, then 30 offspring.
  for (double target : {1.0, 0.5, 0.25, 0.1, 0.05}) {
    for (uint64_t seed : {1, 2, 3}) {
      auto search = MakeEvolution(Context(target, 40, seed));
      ASSERT_NE(search, nullptr);
      std::vector<v1::Policy> proposals = ProposeAndObserve(search.get(), 40, DistinctReward);
      for (size_t i = 0; i < proposals.size(); ++i) {
        ExpectValid(proposals[i], target,
                    "target " + std::to_string(target) + " seed " + std::to_string(seed) + " #" +
                        std::to_string(i));
      }
    }
  }
}

TEST(EvolutionSearchTest, ImpossibleTargetStillGivesValidPolicies) {
  auto search = MakeEvolution(Context(0.001, 12));
  ASSERT_NE(search, nullptr);
  std::vector<v1::Policy> proposals = ProposeAndObserve(search.get(), 12, DistinctReward);
  for (const auto& policy : proposals) {
    ASSERT_EQ(policy.layers_size(), 4);
    EXPECT_TRUE(ResolvePolicy(policy, Cnn()).ok()) << PolicySummary(policy);
  }
}

TEST(EvolutionSearchTest, ProposalsAreDistinct) {
  // Offspring are mutated, and duplicates of earlier proposals are redrawn.
  auto search = MakeEvolution(Context(0.5, 64, 11));
  ASSERT_NE(search, nullptr);
  std::set<std::string> distinct;
  for (const auto& policy : ProposeAndObserve(search.get(), 60, PreferUnprunedConv1)) {
    distinct.insert(PolicyToJson(policy));
  }
  EXPECT_EQ(distinct.size(), 60u);
}

TEST(EvolutionSearchTest, WithoutResultsKeepsProposingDistinctRandomPolicies) {
  // Budget 16 gives a population of 4; nothing observed, so every later
  // proposal is random too, and none repeats.
  auto search = MakeEvolution(Context(0.5, 16, 4));
  ASSERT_NE(search, nullptr);
  std::set<std::string> distinct;
  for (int i = 0; i < 20; ++i) {
    v1::Policy policy = search->Propose();
    ExpectValid(policy, 0.5, "#" + std::to_string(i));
    distinct.insert(PolicyToJson(policy));
  }
  EXPECT_EQ(distinct.size(), 20u);
}

// ---- Determinism ----

// Runs a fixed, interleaved schedule: propose three, observe two of them in
// reverse, and so on; returns every proposal.
std::vector<v1::Policy> InterleavedRun(uint64_t seed) {
  auto search = MakeEvolution(Context(0.25, 32, seed));
  std::vector<v1::Policy> proposals;
  std::vector<v1::Policy> outstanding;
  for (int round = 0; round < 12; ++round) {
    for (int i = 0; i < 3; ++i) {
      proposals.push_back(search->Propose());
      outstanding.push_back(proposals.back());
    }
    for (int i = 0; i < 2; ++i) {
      v1::Policy done = outstanding.back();
      outstanding.pop_back();
      search->Observe(done, SomeEvaluation(), PreferUnprunedConv1(done));
    }
  }
  return proposals;
}

TEST(EvolutionSearchTest, SameSeedAndObservationsGiveSameProposals) {
  std::vector<v1::Policy> a = InterleavedRun(123);
  std::vector<v1::Policy> b = InterleavedRun(123);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(SamePolicy(a[i], b[i])) << i << ": " << PolicySummary(a[i]) << " vs "
                                        << PolicySummary(b[i]);
  }
}

TEST(EvolutionSearchTest, DifferentSeedsGiveDifferentProposals) {
  std::vector<v1::Policy> a = InterleavedRun(1);
  std::vector<v1::Policy> b = InterleavedRun(2);
  ASSERT_EQ(a.size(), b.size());
  int differing = 0;
  for (size_t i = 0; i < a.size(); ++i) differing += SamePolicy(a[i], b[i]) ? 0 : 1;
  EXPECT_GT(differing, static_cast<int>(a.size()) / 2);
}

// ---- Results in any order ----

TEST(EvolutionSearchTest, ObservationOrderDoesNotChangeWhatItLearns) {
  // Two searches, same seed, propose the same batch (population 8 plus 4
  // more random ones while nothing has come back); one hears the results in
  // proposal order, the other in reverse. With distinct rewards they keep
  // the same population, so the offspring that follow are the same.
  auto forward = MakeEvolution(Context(0.5, 32, 9));
  auto reverse = MakeEvolution(Context(0.5, 32, 9));
  ASSERT_NE(forward, nullptr);
  ASSERT_NE(reverse, nullptr);
  std::vector<v1::Policy> batch;
  for (int i = 0; i < 12; ++i) {
    batch.push_back(forward->Propose());
    ASSERT_TRUE(SamePolicy(batch.back(), reverse->Propose())) << i;
  }
  for (const auto& policy : batch) forward->Observe(policy, SomeEvaluation(), DistinctReward(policy));
  for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
    reverse->Observe(*it, SomeEvaluation(), DistinctReward(*it));
  }
  for (int i = 0; i < 10; ++i) {
    v1::Policy a = forward->Propose();
    v1::Policy b = reverse->Propose();
    ExpectValid(a, 0.5, "offspring #" + std::to_string(i));
    EXPECT_TRUE(SamePolicy(a, b)) << i << ": " << PolicySummary(a) << " vs " << PolicySummary(b);
  }
}

TEST(EvolutionSearchTest, ResultsArrivingLateStillSteerTheOffspring) {
  // Everything is proposed before anything comes back, then observed in
  // reverse; the offspring afterwards must already favour the best results.
  auto search = MakeEvolution(Context(0.5, 64, 5));  // population 16
  ASSERT_NE(search, nullptr);
  std::vector<v1::Policy> batch;
  for (int i = 0; i < 24; ++i) batch.push_back(search->Propose());
  double batch_mean = 0;
  for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
    search->Observe(*it, SomeEvaluation(), PreferUnprunedConv1(*it));
    batch_mean += it->layers(0).prune() / batch.size();
  }
  double offspring_mean = 0;
  for (const auto& policy : ProposeAndObserve(search.get(), 20, PreferUnprunedConv1)) {
    ExpectValid(policy, 0.5, "offspring");
    offspring_mean += policy.layers(0).prune() / 20;
  }
  EXPECT_LT(offspring_mean, 0.5 * batch_mean);
}

TEST(EvolutionSearchTest, TiesKeepTheEarlierResult) {
  // Population 4. `full` hears eight equal rewards, `first_four` only the
  // first four; if ties keep the earlier arrival, both keep the same four in
  // the same order and so breed the same offspring.
  auto full = MakeEvolution(Context(0.5, 16, 6));
  auto first_four = MakeEvolution(Context(0.5, 16, 6));
  ASSERT_NE(full, nullptr);
  ASSERT_NE(first_four, nullptr);
  std::vector<v1::Policy> batch;
  for (int i = 0; i < 8; ++i) {
    batch.push_back(full->Propose());
    ASSERT_TRUE(SamePolicy(batch.back(), first_four->Propose())) << i;
  }
  for (int i = 0; i < 8; ++i) full->Observe(batch[i], SomeEvaluation(), 0.0);
  for (int i = 0; i < 4; ++i) first_four->Observe(batch[i], SomeEvaluation(), 0.0);
  for (int i = 0; i < 10; ++i) {
    v1::Policy a = full->Propose();
    v1::Policy b = first_four->Propose();
    EXPECT_TRUE(SamePolicy(a, b)) << i << ": " << PolicySummary(a) << " vs " << PolicySummary(b);
  }
}

TEST(EvolutionSearchTest, IgnoresNonFiniteRewardsAndForeignPolicies) {
  // Neither can be bred from; a search that heard only those must behave as
  // one that heard nothing.
  auto heard_junk = MakeEvolution(Context(0.5, 16, 8));
  auto heard_nothing = MakeEvolution(Context(0.5, 16, 8));
  ASSERT_NE(heard_junk, nullptr);
  ASSERT_NE(heard_nothing, nullptr);
  v1::Policy foreign;
  foreign.add_layers()->set_name("not-a-layer");
  for (int i = 0; i < 10; ++i) {
    v1::Policy a = heard_junk->Propose();
    v1::Policy b = heard_nothing->Propose();
    ASSERT_TRUE(SamePolicy(a, b)) << i << ": " << PolicySummary(a) << " vs " << PolicySummary(b);
    heard_junk->Observe(a, SomeEvaluation(), std::numeric_limits<double>::quiet_NaN());
    heard_junk->Observe(a, SomeEvaluation(), -std::numeric_limits<double>::infinity());
    heard_junk->Observe(foreign, SomeEvaluation(), 100.0);
  }
}

// ---- Selection ----

// Mean of `quantity` over the initial random population and over the 20
// offspring that follow, each result observed as soon as it is proposed.
struct Means {
  double initial = 0;
  double offspring = 0;
};

Means InitialAndOffspringMeans(uint64_t seed, const RewardFn& reward,
                               const std::function<double(const v1::Policy&)>& quantity) {
  constexpr int kBudget = 64;      // population clamp(64 / 4, 4, 16) = 16
  constexpr int kPopulation = 16;
  constexpr int kOffspring = 20;
  auto search = MakeEvolution(Context(0.5, kBudget, seed));
  Means means;
  for (const auto& policy : ProposeAndObserve(search.get(), kPopulation, reward)) {
    means.initial += quantity(policy) / kPopulation;
  }
  for (const auto& policy : ProposeAndObserve(search.get(), kOffspring, reward)) {
    means.offspring += quantity(policy) / kOffspring;
  }
  return means;
}

TEST(EvolutionSearchTest, OffspringConcentrateNearTheBestPruneRatio) {
  // The random population prunes conv1 by ~0.3 on average; offspring of the
  // least-pruned parents, nudged by sigma 0.1, must prune far less.
  for (uint64_t seed : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) {
    Means means = InitialAndOffspringMeans(
        seed, PreferUnprunedConv1, [](const v1::Policy& p) { return p.layers(0).prune(); });
    EXPECT_GT(means.initial, 0.1) << "seed " << seed;
    EXPECT_LT(means.offspring, 0.5 * means.initial) << "seed " << seed;
  }
}

TEST(EvolutionSearchTest, OffspringConcentrateNearTheBestBitWidth) {
  // About a quarter of random proposals keep conv2 at 32 bits (one of four
  // levels; random search would stay there); selection and one-level bit
  // moves must make clearly more offspring do so, even though the population
  // starts with few winners.
  for (uint64_t seed : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) {
    Means means = InitialAndOffspringMeans(seed, PreferFullPrecisionConv2, PreferFullPrecisionConv2);
    EXPECT_LT(means.initial, 0.5) << "seed " << seed;
    EXPECT_GE(means.offspring, 0.25) << "seed " << seed;
    EXPECT_GT(means.offspring, means.initial + 0.15) << "seed " << seed;
  }
}

}  // namespace
}  // namespace shrink::agent
