// Knowledge-distillation pieces shared by the CNN and the transformers (internal:
// pulls in torch): how many steps a policy buys, the soft-target and feature
// losses, and the two-stage pruning arithmetic ("compress part of the way,
// distill, continue").
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "shrink/v1/types.pb.h"

namespace shrink::worker {

// Optimizer steps a policy gets: all of max_steps when any layer distills (strength > 0), else 0.
// Strengths weight each layer's feature matching; they do not buy steps, so that a policy's
// retention does not depend on how much compute its strengths happened to ask for (steps cost
// time, which no reward term counts, so a search could only learn to ask for all of them).
int64_t DistillSteps(const std::vector<shrink::v1::LayerAction>& actions, int64_t max_steps);

// T^2 * KL(softmax(teacher / T) || softmax(student / T)) per row, averaged over rows whose
// `row_weights` is 1 (all rows when undefined). Logits are [N, C].
torch::Tensor SoftTargetLoss(const torch::Tensor& student, const torch::Tensor& teacher, double temperature,
                             const torch::Tensor& row_weights = torch::Tensor());

// |student - teacher|^2 / |teacher|^2: feature matching whose weight does not depend on the
// features' scale (GPT-2's residual stream grows with depth, BERT's is layer-normalized).
torch::Tensor RelativeSquaredError(const torch::Tensor& student, const torch::Tensor& teacher);

// The prune ratio of the first of two stages: half the policy's.
inline double FirstStagePrune(double ratio) { return ratio / 2; }

// The ratio that, applied to the `current` units left after the first stage, leaves exactly
// the units a single-stage `ratio` leaves of `original` (round(ratio * original) removed,
// at least one kept), so staged and single-stage models have the same shapes.
double SecondStagePrune(int64_t original, int64_t current, double ratio);

// Optimizer steps of each stage: the first gets half (rounded down), the second the rest.
inline int64_t FirstStageSteps(int64_t steps) { return steps / 2; }

}  // namespace shrink::worker
