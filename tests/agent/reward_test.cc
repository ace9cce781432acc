#include "agent/reward.h"

#include <gtest/gtest.h>

namespace shrink::agent {
namespace {

v1::RewardWeights Weights(double alpha, double beta, double gamma, double delta) {
  v1::RewardWeights w;
  w.set_alpha(alpha);
  w.set_beta(beta);
  w.set_gamma(gamma);
  w.set_delta(delta);
  return w;
}

v1::Goal Goal(double target_size, double min_retention) {
  v1::Goal g;
  g.set_target_size(target_size);
  g.set_min_retention(min_retention);
  return g;
}

v1::Evaluation Eval(double retention, double size_ratio, double speedup) {
  v1::Evaluation e;
  e.set_retention(retention);
  e.set_size_ratio(size_ratio);
  e.set_speedup(speedup);
  return e;
}

TEST(ComputeRewardTest, FeasibleCandidateHasNoDegradation) {
  // 2*0.98 + 1*(1 - 0.2) + 0.5*(1.5 - 1) = 1.96 + 0.8 + 0.25
  EXPECT_NEAR(ComputeReward(Weights(2, 1, 0.5, 10), Goal(0.25, 0.95), Eval(0.98, 0.2, 1.5)), 3.01, 1e-12);
}

TEST(ComputeRewardTest, MissingBothGoalsSubtractsDeltaTimesBothShortfalls) {
  // Below the retention floor size and speed earn nothing:
  // 2*0.9 - 10*((0.95 - 0.9) + (0.3 - 0.25)) = 1.8 - 1.0
  EXPECT_NEAR(ComputeReward(Weights(2, 1, 0.5, 10), Goal(0.25, 0.95), Eval(0.9, 0.3, 0.8)), 0.8, 1e-12);
}

TEST(ComputeRewardTest, MissingOnlyRetentionPenalisesOnlyRetention) {
  // 1*0.8 + 0*... + 0 - 4*(0.9 - 0.8) = 0.8 - 0.4
  EXPECT_NEAR(ComputeReward(Weights(1, 0, 0, 4), Goal(0.5, 0.9), Eval(0.8, 0.4, 1.0)), 0.4, 1e-12);
}

TEST(ComputeRewardTest, MissingOnlySizePenalisesOnlySize) {
  // 1*0.99 + 2*(1 - 0.6) - 3*(0.6 - 0.5) = 0.99 + 0.8 - 0.3
  EXPECT_NEAR(ComputeReward(Weights(1, 2, 0, 3), Goal(0.5, 0.9), Eval(0.99, 0.6, 1.0)), 1.49, 1e-12);
}

TEST(ComputeRewardTest, AllZeroWeightsUseDefaults) {
  // Defaults alpha 1, beta 0.5, gamma 0.1, delta 5: 0.98 + 0.5*0.8 + 0.1*0.5
  EXPECT_NEAR(ComputeReward(v1::RewardWeights(), Goal(0.25, 0.95), Eval(0.98, 0.2, 1.5)), 1.43, 1e-12);
}

TEST(ComputeRewardTest, AllZeroWeightsUseDefaultDeltaForDegradation) {
  // Retention 0.96 meets the floor, size misses: 0.96 + 0.5*0.7 + 0.1*(-0.2) - 5*0.05
  EXPECT_NEAR(ComputeReward(v1::RewardWeights(), Goal(0.25, 0.95), Eval(0.96, 0.3, 0.8)), 1.04, 1e-12);
}

TEST(ComputeRewardTest, BelowTheFloorSizeAndSpeedEarnNothing) {
  // 0.9 - 5*0.05: the 10x speedup and the 85% compression are not counted.
  EXPECT_NEAR(ComputeReward(v1::RewardWeights(), Goal(0.25, 0.95), Eval(0.9, 0.15, 10.0)), 0.65, 1e-12);
}

TEST(ComputeRewardTest, NoSpeedupBelowTheFloorOutscoresAFeasibleCandidate) {
  // Without the floor, 94% retention at 27x (the reference BERT pruned by 90%) scored
  // 0.94 + 0.5*0.87 + 0.1*26 - 5*0.02 = 3.875 against 1.873 for a feasible 99% at 5.5x.
  v1::Goal goal = Goal(0.22, 0.96);
  double feasible = ComputeReward({}, goal, Eval(0.99, 0.134, 5.5));
  for (double speedup : {1.0, 5.0, 27.0, 1000.0}) {
    EXPECT_LT(ComputeReward({}, goal, Eval(0.94, 0.13, speedup)), feasible) << speedup;
    EXPECT_LT(ComputeReward({}, goal, Eval(0.959, 0.10, speedup)), feasible) << speedup;
  }
}

TEST(ComputeRewardTest, PartlyZeroWeightsAreTakenAsGiven) {
  // Only alpha set: the reward is the retention alone, no default beta/gamma/delta.
  EXPECT_NEAR(ComputeReward(Weights(1, 0, 0, 0), Goal(0.25, 0.95), Eval(0.5, 0.9, 3.0)), 0.5, 1e-12);
}

TEST(ComputeRewardTest, BetterRetentionAtSameSizeScoresHigher) {
  v1::Goal goal = Goal(0.5, 0.9);
  EXPECT_GT(ComputeReward({}, goal, Eval(0.97, 0.3, 1.0)), ComputeReward({}, goal, Eval(0.95, 0.3, 1.0)));
}

TEST(ComputeRewardTest, SmallerFeasibleModelScoresHigherAtSameRetention) {
  v1::Goal goal = Goal(0.5, 0.9);
  EXPECT_GT(ComputeReward({}, goal, Eval(0.95, 0.2, 1.0)), ComputeReward({}, goal, Eval(0.95, 0.4, 1.0)));
}

TEST(EffectiveWeightsTest, AllZeroBecomesDefaults) {
  v1::RewardWeights w = EffectiveWeights(v1::RewardWeights());
  EXPECT_DOUBLE_EQ(w.alpha(), 1.0);
  EXPECT_DOUBLE_EQ(w.beta(), 0.5);
  EXPECT_DOUBLE_EQ(w.gamma(), 0.1);
  EXPECT_DOUBLE_EQ(w.delta(), 5.0);
}

TEST(EffectiveWeightsTest, ExplicitWeightsAreKept) {
  v1::RewardWeights w = EffectiveWeights(Weights(2, 0, 0.3, 0));
  EXPECT_DOUBLE_EQ(w.alpha(), 2.0);
  EXPECT_DOUBLE_EQ(w.beta(), 0.0);
  EXPECT_DOUBLE_EQ(w.gamma(), 0.3);
  EXPECT_DOUBLE_EQ(w.delta(), 0.0);
}

TEST(MeetsGoalTest, InsideBothLimits) { EXPECT_TRUE(MeetsGoal(Goal(0.25, 0.95), Eval(0.97, 0.2, 1))); }

TEST(MeetsGoalTest, ExactlyAtBothLimitsMeets) { EXPECT_TRUE(MeetsGoal(Goal(0.25, 0.95), Eval(0.95, 0.25, 1))); }

TEST(MeetsGoalTest, JustTooLargeFails) { EXPECT_FALSE(MeetsGoal(Goal(0.25, 0.95), Eval(0.99, 0.2501, 1))); }

TEST(MeetsGoalTest, JustTooInaccurateFails) { EXPECT_FALSE(MeetsGoal(Goal(0.25, 0.95), Eval(0.9499, 0.1, 1))); }

TEST(MeetsGoalTest, SpeedupDoesNotMatter) {
  EXPECT_TRUE(MeetsGoal(Goal(0.5, 0.9), Eval(0.95, 0.4, 0.5)));
}

TEST(MeetsGoalTest, ZeroMinRetentionAcceptsAnyAccuracy) {
  EXPECT_TRUE(MeetsGoal(Goal(0.5, 0.0), Eval(0.0, 0.5, 1)));
}

}  // namespace
}  // namespace shrink::agent
