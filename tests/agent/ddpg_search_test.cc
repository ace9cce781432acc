// The DDPG search: determinism, learning on a synthetic reward with a known
// optimum, checkpoint/restore and transfer between models.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>

#include "agent/budget.h"
#include "agent/search.h"
#include "common/policy.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/test_util/cnn_description.h"

namespace shrink::agent {
namespace {

using ::testing::HasSubstr;

// A stack of `layers` linear layers (the last one not prunable).
v1::ModelDescription Stack(int layers) {
  v1::ModelDescription model;
  int64_t params = 0;
  for (int i = 0; i < layers; ++i) {
    *model.add_layers() = testing::MakeLayer("layer" + std::to_string(i), "linear", 64, 64, 1,
                                             i + 1 < layers, 1);
    params += model.layers(i).params();
  }
  model.set_params(params);
  model.set_bytes(4 * params);
  return model;
}

SearchContext Context(const v1::ModelDescription& model, int budget, uint64_t seed) {
  SearchContext context;
  context.model = model;
  context.goal.set_target_size(1.0);  // no clamping: the reward alone decides
  context.goal.set_min_retention(0.0);
  context.budget = budget;
  context.seed = seed;
  return context;
}

// A reward with a known optimum: layer i of n wants prune 0.8 * i / (n - 1)
// and 16 bits; distillation should be 0.5. The best policy scores 1.
double SyntheticReward(const v1::Policy& policy) {
  int n = policy.layers_size();
  double penalty = 0;
  for (int i = 0; i < n; ++i) {
    const v1::LayerAction& a = policy.layers(i);
    if (i + 1 < n) {
      double want = 0.8 * i / std::max(1, n - 2);
      penalty += 2 * std::abs(a.prune() - want);
    }
    penalty += EffectiveBits(a.bits()) == 16 ? 0 : 0.5;
    penalty += std::abs(a.distill() - 0.5);
  }
  return 1 - penalty / n;
}

// Runs `episodes` evaluations, `parallel` proposals in flight at a time and
// their results observed in reverse order; returns every reward.
std::vector<double> RunEpisodes(Search* search, int episodes, int parallel = 4) {
  std::vector<double> rewards;
  while (static_cast<int>(rewards.size()) < episodes) {
    std::vector<v1::Policy> batch;
    for (int k = 0; k < parallel && static_cast<int>(rewards.size() + batch.size()) < episodes; ++k) {
      batch.push_back(search->Propose());
    }
    for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
      double r = SyntheticReward(*it);
      search->Observe(*it, v1::Evaluation(), r);
      rewards.push_back(r);
    }
  }
  return rewards;
}

double Mean(const std::vector<double>& v, size_t from, size_t to) {
  return std::accumulate(v.begin() + from, v.begin() + to, 0.0) / static_cast<double>(to - from);
}

std::unique_ptr<Search> Make(const std::string& name, const SearchContext& context) {
  auto search = MakeSearch(name, context);
  EXPECT_TRUE(search.ok()) << search.status();
  return search.ok() ? std::move(*search) : nullptr;
}

bool Same(const v1::Policy& a, const v1::Policy& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

TEST(DdpgSearchTest, SameSeedSameObservationsGiveTheSameProposals) {
  auto a = Make("ddpg", Context(Stack(5), 20, 9));
  auto b = Make("ddpg", Context(Stack(5), 20, 9));
  for (int i = 0; i < 20; ++i) {
    v1::Policy pa = a->Propose(), pb = b->Propose();
    ASSERT_TRUE(Same(pa, pb)) << "proposal " << i;
    a->Observe(pa, v1::Evaluation(), SyntheticReward(pa));
    b->Observe(pb, v1::Evaluation(), SyntheticReward(pb));
  }
}

TEST(DdpgSearchTest, DifferentSeedsExploreDifferently) {
  auto a = Make("ddpg", Context(Stack(5), 8, 1));
  auto b = Make("ddpg", Context(Stack(5), 8, 2));
  EXPECT_FALSE(Same(a->Propose(), b->Propose()));
}

TEST(DdpgSearchTest, LearnsASyntheticRewardBetterThanRandom) {
  constexpr int kEpisodes = 60;
  double ddpg_late = 0, random_mean = 0, ddpg_early = 0;
  for (uint64_t seed : {1, 2, 3}) {
    auto ddpg = Make("ddpg", Context(Stack(6), kEpisodes, seed));
    auto random = Make("random", Context(Stack(6), kEpisodes, seed));
    std::vector<double> d = RunEpisodes(ddpg.get(), kEpisodes);
    std::vector<double> r = RunEpisodes(random.get(), kEpisodes);
    ddpg_early += Mean(d, 0, 15) / 3;
    ddpg_late += Mean(d, kEpisodes - 20, kEpisodes) / 3;
    random_mean += Mean(r, 0, kEpisodes) / 3;
  }
  std::printf("synthetic reward, mean of 3 seeds: random %.3f, ddpg first 15 %.3f, ddpg last 20 %.3f\n",
              random_mean, ddpg_early, ddpg_late);
  // Random scores about -0.4 on this reward; the optimum is 1.
  EXPECT_GT(ddpg_late, random_mean + 0.1) << "ddpg late " << ddpg_late << ", random " << random_mean;
  EXPECT_GT(ddpg_late, ddpg_early + 0.1) << "it improves over its own warm-up";
}

TEST(DdpgSearchTest, RestoredCheckpointContinuesExactly) {
  auto original = Make("ddpg", Context(Stack(5), 30, 4));
  RunEpisodes(original.get(), 12);
  auto bytes = original->SaveState();
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(original->proposals(), 12);

  auto restored = Make("ddpg", Context(Stack(5), 30, 4));
  absl::Status restore = restored->RestoreState(*bytes);
  ASSERT_TRUE(restore.ok()) << restore;
  EXPECT_EQ(restored->proposals(), 12);
  for (int i = 0; i < 10; ++i) {
    v1::Policy a = original->Propose(), b = restored->Propose();
    ASSERT_TRUE(Same(a, b)) << "proposal " << i << " after the restore";
    original->Observe(a, v1::Evaluation(), SyntheticReward(a));
    restored->Observe(b, v1::Evaluation(), SyntheticReward(b));
  }
}

TEST(DdpgSearchTest, CorruptCheckpointsAreRefused) {
  auto search = Make("ddpg", Context(Stack(3), 10, 1));
  EXPECT_FALSE(search->RestoreState("").ok());
  EXPECT_FALSE(search->RestoreState("shrink-ddpg-search-v2\n0123456789abcdef0123456789abcdefgarbage").ok());
  SearchContext context = Context(Stack(3), 10, 1);
  context.init_state = "not a checkpoint";
  auto transferred = MakeSearch("ddpg", context);
  ASSERT_FALSE(transferred.ok());
  EXPECT_EQ(transferred.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(transferred.status().message(), HasSubstr("init agent"));
}

TEST(DdpgSearchTest, CheckpointsOfTheOlderActionScaleAreRefusedByName) {
  // A v1 agent's actions meant other bit widths and prune ratios: resuming it would replay
  // its buffer on the wrong scale, so the coordinator replays the job's results instead.
  auto original = Make("ddpg", Context(Stack(3), 10, 1));
  RunEpisodes(original.get(), 4);
  auto bytes = original->SaveState();
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  std::string v1 = *bytes;
  v1.replace(0, std::string("shrink-ddpg-search-v2\n").size(), "shrink-ddpg-search-v1\n");
  auto search = Make("ddpg", Context(Stack(3), 10, 1));
  absl::Status restore = search->RestoreState(v1);
  EXPECT_EQ(restore.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(restore.message(), HasSubstr("older agent (v1)"));
  SearchContext context = Context(Stack(3), 10, 1);
  context.init_state = v1;
  auto transferred = MakeSearch("ddpg", context);
  ASSERT_FALSE(transferred.ok());
  EXPECT_THAT(transferred.status().message(), HasSubstr("older agent (v1)"));
  EXPECT_TRUE(search->RestoreState(*bytes).ok()) << "the same checkpoint at v2 restores";
}

TEST(DdpgSearchTest, BaselinesKeepNoCheckpoint) {
  auto random = Make("random", Context(Stack(3), 10, 1));
  auto bytes = random->SaveState();
  ASSERT_TRUE(bytes.ok());
  EXPECT_TRUE(bytes->empty());
}

TEST(DdpgSearchTest, TransferredAgentStartsAheadOnAModelWithMoreLayers) {
  // Learn on a 6-layer model, then start on a 9-layer one: the normalized
  // state carries what was learned, so early episodes beat a fresh start.
  auto teacher = Make("ddpg", Context(Stack(6), 60, 5));
  RunEpisodes(teacher.get(), 60);
  auto bytes = teacher->SaveState();
  ASSERT_TRUE(bytes.ok());

  double transferred_early = 0, fresh_early = 0;
  for (uint64_t seed : {11, 12, 13}) {
    SearchContext context = Context(Stack(9), 40, seed);
    auto fresh = Make("ddpg", context);
    context.init_state = *bytes;
    auto transferred = Make("ddpg", context);
    ASSERT_NE(transferred, nullptr);
    transferred_early += Mean(RunEpisodes(transferred.get(), 12), 0, 12) / 3;
    fresh_early += Mean(RunEpisodes(fresh.get(), 12), 0, 12) / 3;
  }
  std::printf("first 12 episodes on 9 layers: fresh %.3f, transferred from 6 layers %.3f\n", fresh_early,
              transferred_early);
  EXPECT_GT(transferred_early, fresh_early + 0.05)
      << "transferred " << transferred_early << ", fresh " << fresh_early;
}

TEST(DdpgSearchTest, ProposalsMeetATightBudgetOnTheCnn) {
  SearchContext context = Context(testing::CnnDescription(), 20, 3);
  context.goal.set_target_size(0.12);
  auto search = Make("ddpg", context);
  for (int i = 0; i < 20; ++i) {
    v1::Policy p = search->Propose();
    std::vector<v1::LayerAction> actions(p.layers().begin(), p.layers().end());
    EXPECT_LE(EstimateSizeRatio(context.model, actions), 0.12) << PolicySummary(p);
    search->Observe(p, v1::Evaluation(), 1.0 - actions[2].prune());
  }
}

}  // namespace
}  // namespace shrink::agent
