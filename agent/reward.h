// The reward the search maximises, and whether a candidate meets the goal.
#pragma once

#include "shrink/v1/types.pb.h"

namespace shrink::agent {

// Weights with zeros replaced by the defaults (alpha 1, beta 0.5, gamma 0.1, delta 5).
v1::RewardWeights EffectiveWeights(const v1::RewardWeights& weights);

// alpha*retention + beta*(1 - size_ratio) + gamma*(speedup - 1)
//   - delta*(max(0, min_retention - retention) + max(0, size_ratio - target_size))
// The last term is the degradation: how far the candidate misses the goal.
double ComputeReward(const v1::RewardWeights& weights, const v1::Goal& goal,
                     const v1::Evaluation& evaluation);

// True when the candidate meets both the size target and the minimum retention.
bool MeetsGoal(const v1::Goal& goal, const v1::Evaluation& evaluation);

}  // namespace shrink::agent
