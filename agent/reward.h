// The reward the search maximises, and whether a candidate meets the goal.
#pragma once

#include "shrink/v1/types.pb.h"

namespace shrink::agent {

// `weights`, or the defaults (alpha 1, beta 0.5, gamma 0.1, delta 5) when all four are zero.
v1::RewardWeights EffectiveWeights(const v1::RewardWeights& weights);

// alpha*retention + [retention >= min_retention] * (beta*(1 - size_ratio) + gamma*(speedup - 1))
//   - delta*(max(0, min_retention - retention) + max(0, size_ratio - target_size))
// The last term is the degradation: how far the candidate misses the goal. Below the
// retention floor a candidate earns nothing for size or speed: otherwise an unbounded
// speedup term lets a heavily pruned, useless model outscore a feasible one, and a
// learning search chases it.
double ComputeReward(const v1::RewardWeights& weights, const v1::Goal& goal,
                     const v1::Evaluation& evaluation);

// True when the candidate meets both the size target and the minimum retention.
bool MeetsGoal(const v1::Goal& goal, const v1::Evaluation& evaluation);

}  // namespace shrink::agent
