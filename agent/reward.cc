#include "agent/reward.h"

#include <algorithm>

namespace shrink::agent {

v1::RewardWeights EffectiveWeights(const v1::RewardWeights& weights) {
  v1::RewardWeights w = weights;
  if (w.alpha() == 0 && w.beta() == 0 && w.gamma() == 0 && w.delta() == 0) {
    w.set_alpha(1.0);
    w.set_beta(0.5);
    w.set_gamma(0.1);
    w.set_delta(5.0);
  }
  return w;
}

double ComputeReward(const v1::RewardWeights& weights, const v1::Goal& goal,
                     const v1::Evaluation& evaluation) {
  v1::RewardWeights w = EffectiveWeights(weights);
  double degradation = std::max(0.0, goal.min_retention() - evaluation.retention()) +
                       std::max(0.0, evaluation.size_ratio() - goal.target_size());
  const bool above_floor = evaluation.retention() >= goal.min_retention();
  const double gains = w.beta() * (1.0 - evaluation.size_ratio()) + w.gamma() * (evaluation.speedup() - 1.0);
  return w.alpha() * evaluation.retention() + (above_floor ? gains : 0.0) - w.delta() * degradation;
}

bool MeetsGoal(const v1::Goal& goal, const v1::Evaluation& evaluation) {
  return evaluation.size_ratio() <= goal.target_size() &&
         evaluation.retention() >= goal.min_retention();
}

}  // namespace shrink::agent
