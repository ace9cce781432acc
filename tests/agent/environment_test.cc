#include "agent/environment.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>

#include "agent/budget.h"
#include "common/policy.h"
#include "tests/test_util/cnn_description.h"

namespace shrink::agent {
namespace {

v1::ModelDescription Cnn() { return testing::CnnDescription(); }

// The reference BERT's shape: embeddings (39% of the params, not prunable), 4 blocks of
// attention (4 heads of 64) and FFN (1024 neurons), a small classifier head.
v1::ModelDescription Bert() {
  v1::ModelDescription model;
  model.set_model_type("bert");
  v1::LayerInfo embeddings = testing::MakeLayer("embeddings", "embedding", 8130, 256, 1, false, 1);
  embeddings.set_params(8130 * 256 + 2 * 256);
  *model.add_layers() = embeddings;
  for (int b = 0; b < 4; ++b) {
    const std::string block = "encoder.layer." + std::to_string(b);
    *model.add_layers() = testing::MakeLayer(block + ".attention", "attention", 256, 4, 4 * 64, true, 1);
    *model.add_layers() = testing::MakeLayer(block + ".ffn", "ffn", 256, 1024, 2, true, 1);
  }
  *model.add_layers() = testing::MakeLayer("head", "linear", 256, 5, 1, false, 1);
  int64_t params = 0;
  for (const auto& layer : model.layers()) params += layer.params();
  model.set_params(params);
  model.set_bytes(4 * params + 20000);
  return model;
}

std::vector<v1::LayerAction> Actions(const v1::Policy& policy) {
  return {policy.layers().begin(), policy.layers().end()};
}

// Walks one episode with `raw` actions; returns the states seen.
std::vector<StateVector> Walk(Environment* env, const std::vector<ActionVector>& raw,
                              std::vector<ActionVector>* applied = nullptr) {
  std::vector<StateVector> states;
  env->Reset();
  for (const auto& a : raw) {
    states.push_back(env->State());
    ActionVector out = env->Step(a);
    if (applied) applied->push_back(out);
  }
  return states;
}

TEST(EnvironmentTest, StateIsNormalizedAndWalksTheLayers) {
  Environment env(Cnn(), 0.25);
  env.Reset();
  for (int i = 0; i < 4; ++i) {
    ASSERT_FALSE(env.Done());
    StateVector s = env.State();
    for (int k = 0; k < kStateSize; ++k) {
      EXPECT_GE(s[k], 0.f) << "feature " << k;
      EXPECT_LE(s[k], 1.f) << "feature " << k;
    }
    EXPECT_FLOAT_EQ(s[0], i / 3.0f);
    EXPECT_EQ(s[1], i < 2 ? 1.f : 0.f) << "conv flag";
    EXPECT_EQ(s[10], i < 3 ? 1.f : 0.f) << "prunable flag";
    env.Step({0.5f, 0.5f, 0.5f});
  }
  EXPECT_TRUE(env.Done());
}

TEST(EnvironmentTest, ReducedSoFarAndPreviousActionFollowTheEpisode) {
  Environment env(Cnn(), 1.0);
  env.Reset();
  StateVector first = env.State();
  EXPECT_EQ(first[11], 0.f) << "nothing removed yet";
  EXPECT_EQ(first[13], 0.f) << "target 1.0 needs nothing removed";
  for (int k = 14; k < 17; ++k) EXPECT_EQ(first[k], 0.f);
  ActionVector applied = env.Step({1.f, 0.f, 0.25f});  // conv1: prune 0.9, 4 bits
  StateVector second = env.State();
  EXPECT_GT(second[11], 0.f);
  EXPECT_FLOAT_EQ(second[14], applied[0]);
  EXPECT_FLOAT_EQ(second[15], applied[1]);
  EXPECT_FLOAT_EQ(second[16], 0.25f);
  EXPECT_LT(second[12], first[12]) << "less of the model is left";
}

TEST(EnvironmentTest, BudgetStillNeededShowsInTheState) {
  Environment env(Cnn(), 0.25);
  env.Reset();
  EXPECT_NEAR(env.State()[13], 0.75, 0.01);
}

TEST(EnvironmentTest, MeasuredLatencyShareAndSensitivityAreUsedWhenPresent) {
  v1::ModelDescription model = Cnn();
  Environment unmeasured(model, 0.5);
  unmeasured.Reset();
  StateVector before = unmeasured.State();
  EXPECT_EQ(before[9], 0.f);
  EXPECT_EQ(before[8], 0.f);
  model.mutable_layers(0)->set_latency_share(0.6);
  model.mutable_layers(0)->set_sensitivity(0.02);
  model.mutable_layers(2)->set_sensitivity(0.08);
  Environment measured(model, 0.5);
  measured.Reset();
  StateVector after = measured.State();
  EXPECT_FLOAT_EQ(after[7], 0.6f);
  EXPECT_FLOAT_EQ(after[8], 0.25f) << "0.02 of the largest 0.08";
  EXPECT_EQ(after[9], 1.f);
}

TEST(EnvironmentTest, FeaturesAreComparableAcrossModelSizes) {
  // The same architecture twice as wide: shares and positions stay put.
  v1::ModelDescription wide;
  *wide.add_layers() = testing::MakeLayer("a", "linear", 100, 200, 1, true, 1);
  *wide.add_layers() = testing::MakeLayer("b", "linear", 200, 20, 1, false, 1);
  v1::ModelDescription narrow;
  *narrow.add_layers() = testing::MakeLayer("a", "linear", 50, 100, 1, true, 1);
  *narrow.add_layers() = testing::MakeLayer("b", "linear", 100, 10, 1, false, 1);
  for (auto* m : {&wide, &narrow}) m->set_bytes(4 * (m->layers(0).params() + m->layers(1).params()));
  Environment a(wide, 0.5), b(narrow, 0.5);
  a.Reset();
  b.Reset();
  StateVector sa = a.State(), sb = b.State();
  EXPECT_EQ(sa[0], sb[0]);
  EXPECT_NEAR(sa[5], sb[5], 0.02);
  EXPECT_NEAR(sa[13], sb[13], 0.02);
}

TEST(EnvironmentTest, EveryEpisodeMeetsTheSizeTarget) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0, 1);
  for (double target : {0.9, 0.5, 0.25, 0.1, 0.05}) {
    Environment env(Cnn(), target);
    for (int episode = 0; episode < 30; ++episode) {
      std::vector<ActionVector> raw(4);
      for (auto& a : raw) a = {u(rng) * 0.3f, u(rng), u(rng)};  // mostly gentle
      Walk(&env, raw);
      v1::Policy policy = env.ToPolicy();
      EXPECT_LE(EstimateSizeRatio(Cnn(), Actions(policy)), target) << PolicySummary(policy);
      EXPECT_TRUE(ResolvePolicy(policy, Cnn()).ok());
    }
  }
}

TEST(EnvironmentTest, ClampLeavesFittingActionsAlone) {
  Environment env(Cnn(), 1.0);
  std::vector<ActionVector> applied;
  Walk(&env, {{0.2f, 0.9f, 0.f}, {0.4f, 0.6f, 0.f}, {0.6f, 0.3f, 1.f}, {0.9f, 0.1f, 0.f}}, &applied);
  v1::Policy policy = env.ToPolicy();
  EXPECT_NEAR(policy.layers(0).prune(), 0.2 * kMaxPrune, 1e-6);
  // Four bit levels (4, 8, 16, 32), a quarter of [0, 1] each.
  EXPECT_EQ(policy.layers(0).bits(), 32);
  EXPECT_EQ(policy.layers(1).bits(), 16);
  EXPECT_EQ(policy.layers(2).bits(), 8);
  EXPECT_EQ(policy.layers(3).bits(), 4);
  EXPECT_DOUBLE_EQ(policy.layers(2).distill(), 1.0);
  EXPECT_EQ(policy.layers(3).prune(), 0.0) << "the output layer is never pruned";
}

TEST(EnvironmentTest, ClampCompressesTheLastLayersWhenTheFirstAreGentle) {
  Environment env(Cnn(), 0.1);
  Walk(&env, std::vector<ActionVector>(4, ActionVector{0.f, 1.f, 0.f}));
  v1::Policy policy = env.ToPolicy();
  // conv1 and conv2 are small: the big fc1 has to take the cut.
  EXPECT_EQ(policy.layers(0).bits(), 32);
  EXPECT_EQ(policy.layers(2).bits(), 4);  // the lowest level first, then just enough pruning
  EXPECT_GT(policy.layers(2).prune(), 0.5);
  EXPECT_LE(EstimateSizeRatio(Cnn(), Actions(policy)), 0.1);
}

TEST(EnvironmentTest, ClampDoesNotRemoveTheLastBlocksOfATransformerWhenTheFirstAreGentle) {
  // Blocks 0-2 as gentle as offered. Counting on the later layers at kMaxPrune, the clamp
  // used to leave them so and prune block 3's attention and FFN both to the maximum,
  // which removes the block; it now counts on at most kClampPlanPrune.
  for (double target : {0.22, 0.15}) {
    Environment env(Bert(), target);
    std::vector<ActionVector> raw(10, ActionVector{0.f, 1.f, 0.f});
    Walk(&env, raw);
    v1::Policy policy = env.ToPolicy();
    SCOPED_TRACE(PolicySummary(policy));
    EXPECT_LE(EstimateSizeRatio(Bert(), Actions(policy)), target);
    for (int b = 0; b < 4; ++b) {
      const double attention = policy.layers(1 + 2 * b).prune(), ffn = policy.layers(2 + 2 * b).prune();
      EXPECT_FALSE(attention >= kMaxPrune - 1e-9 && ffn >= kMaxPrune - 1e-9) << "block " << b << " removed";
      EXPECT_LE(std::max(attention, ffn), kClampPlanPrune + 1e-3) << "block " << b;
    }
  }
}

TEST(EnvironmentTest, ClampStillPrunesToTheMaximumWhenTheTargetNeedsIt) {
  // 6% leaves no room for the plan's kClampPlanPrune: the clamp falls back to kMaxPrune
  // for the layers after the gentle ones, and the episode still meets the target.
  Environment env(Bert(), 0.06);
  Walk(&env, std::vector<ActionVector>(10, ActionVector{0.f, 1.f, 0.f}));
  v1::Policy policy = env.ToPolicy();
  EXPECT_LE(EstimateSizeRatio(Bert(), Actions(policy)), 0.06) << PolicySummary(policy);
  double most = 0;
  for (const auto& layer : policy.layers()) most = std::max(most, layer.prune());
  EXPECT_GT(most, kClampPlanPrune) << PolicySummary(policy);
}

TEST(EnvironmentTest, ActionsChooseAmongTheOfferedWidths) {
  // At 22% no uniform policy affords 16 or 32 bits on the BERT shape: the bit action's
  // whole range maps onto 4 and 8 (two halves), and Encode maps wider widths to 8.
  Environment env(Bert(), 0.22);
  EXPECT_EQ(env.bit_levels(), (std::vector<int>{4, 8}));
  EXPECT_EQ(env.Decode(1, {0.f, 0.2f, 0.f}).bits(), 4);
  EXPECT_EQ(env.Decode(1, {0.f, 0.7f, 0.f}).bits(), 8);
  EXPECT_EQ(env.Decode(1, {0.f, 1.0f, 0.f}).bits(), 8);
  v1::LayerAction fp32 = env.Decode(1, {0.f, 1.f, 0.f});
  fp32.set_bits(32);
  EXPECT_FLOAT_EQ(env.Encode(1, fp32)[1], 0.75f);
}

TEST(EnvironmentTest, ReplayRecoversTheEpisodeFromItsPolicy) {
  Environment env(Cnn(), 0.25);
  std::vector<ActionVector> applied;
  std::vector<StateVector> states =
      Walk(&env, {{0.3f, 0.9f, 0.1f}, {0.1f, 0.4f, 0.2f}, {0.05f, 0.9f, 0.3f}, {0.f, 0.9f, 0.4f}}, &applied);
  auto transitions = env.Replay(env.ToPolicy());
  ASSERT_TRUE(transitions.ok()) << transitions.status();
  ASSERT_EQ(transitions->size(), 4u);
  for (int i = 0; i < 4; ++i) {
    for (int k = 0; k < kStateSize; ++k) EXPECT_FLOAT_EQ((*transitions)[i].state[k], states[i][k]);
    for (int k = 0; k < kActionSize; ++k) EXPECT_FLOAT_EQ((*transitions)[i].action[k], applied[i][k]);
    if (i < 3) {
      for (int k = 0; k < kStateSize; ++k) EXPECT_FLOAT_EQ((*transitions)[i].next_state[k], states[i + 1][k]);
    }
    EXPECT_EQ((*transitions)[i].last, i == 3);
  }
}

TEST(EnvironmentTest, ReplayRefusesAPolicyOfAnotherModel) {
  Environment env(Cnn(), 0.25);
  v1::Policy policy;
  policy.add_layers()->set_name("encoder.layer.0");
  EXPECT_FALSE(env.Replay(policy).ok());
}

TEST(EnvironmentTest, EncodeInvertsDecode) {
  Environment env(Cnn(), 1.0);
  for (float p : {0.f, 0.3f, 1.f}) {
    for (float b : {0.1f, 0.5f, 0.9f}) {
      v1::LayerAction a = env.Decode(0, {p, b, 0.7f});
      v1::LayerAction again = env.Decode(0, env.Encode(0, a));
      EXPECT_NEAR(again.prune(), a.prune(), 1e-6);
      EXPECT_EQ(again.bits(), a.bits());
      EXPECT_NEAR(again.distill(), 0.7, 1e-6);
    }
  }
}

TEST(EnvironmentTest, PruneActionIsAbsoluteWhileTheTargetDoesNotBind) {
  Environment env(Cnn(), 1.0);
  EXPECT_DOUBLE_EQ(env.PruneMidpoint(0, 32), kMaxPrune / 2);
  for (float u : {0.f, 0.2f, 0.5f, 0.8f, 1.f}) {
    EXPECT_NEAR(env.Decode(0, {u, 1.f, 0.f}).prune(), kMaxPrune * u, 1e-6);
  }
}

TEST(EnvironmentTest, NeutralActionsSpreadTheCutEvenlyWhenTheTargetBinds) {
  // At 8% the BERT shape needs about prune 0.66 everywhere at 4 bits. Neutral actions
  // (0.5) stand for each layer's even share of what is left, so an episode of them is
  // close to uniform and fits the target; on an absolute scale they meant prune 0.45,
  // and the clamp made the last layers pay for the first ones.
  Environment env(Bert(), 0.08);
  EXPECT_GT(env.PruneMidpoint(1, 4), 0.6);
  Walk(&env, std::vector<ActionVector>(10, ActionVector{0.5f, 0.f, 0.f}));
  v1::Policy policy = env.ToPolicy();
  SCOPED_TRACE(PolicySummary(policy));
  EXPECT_LE(EstimateSizeRatio(Bert(), Actions(policy)), 0.08);
  double least = 1, most = 0;
  for (int i = 1; i <= 8; ++i) {
    least = std::min(least, policy.layers(i).prune());
    most = std::max(most, policy.layers(i).prune());
  }
  EXPECT_GT(least, 0.6);
  EXPECT_LT(most - least, 0.05);
  // Below the neutral action an early layer may still keep more; the rest then pays.
  Environment gentle(Bert(), 0.08);
  std::vector<ActionVector> raw(10, ActionVector{0.5f, 0.f, 0.f});
  raw[1][0] = 0.25f;
  Walk(&gentle, raw);
  v1::Policy kept = gentle.ToPolicy();
  EXPECT_LT(kept.layers(1).prune(), least - 0.2) << PolicySummary(kept);
  EXPECT_LE(EstimateSizeRatio(Bert(), Actions(kept)), 0.08) << PolicySummary(kept);
}

TEST(EnvironmentTest, EncodeInvertsDecodeWhenTheTargetBinds) {
  Environment env(Bert(), 0.08);
  env.Step({0.3f, 0.f, 0.f});
  env.Step({0.7f, 0.f, 0.f});
  env.Step({0.5f, 0.f, 0.f});
  ASSERT_GT(env.PruneMidpoint(3, 4), kMaxPrune / 2);
  for (float u : {0.f, 0.25f, 0.5f, 0.6f, 1.f}) {
    v1::LayerAction a = env.Decode(3, {u, 0.f, 0.4f});
    EXPECT_NEAR(env.Encode(3, a)[0], u, 1e-4) << u;
  }
}

}  // namespace
}  // namespace shrink::agent
