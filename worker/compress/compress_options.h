// How a policy is applied: unit ranking for pruning, distillation settings, and the task data
// that calibrates and trains. Torch-free.
#pragma once

#include <cstdint>

#include "common/recall.h"
#include "worker/data/task_data.h"

namespace shrink::worker {

// How structured pruning ranks heads / neurons / channels.
enum class PruneCriterion {
  kMagnitude,   // weight L1 norms
  kActivation,  // each unit's output on the calibration data as the next layer sees it (magnitude without data)
};

// Knowledge distillation from the uncompressed model (the teacher) while a policy is applied:
// pruning runs in two stages (half the ratio, distill, the rest, distill), then quantization.
// The loss is the task loss + temperature-scaled KL on the logits + each layer's feature
// matching (transformers: block outputs and attention maps; CNN: feature maps) weighted by
// that layer's distill strength. Steps = max_steps when any layer's strength is above 0.
struct DistillOptions {
  int64_t max_steps = 0;        // optimizer steps when the policy distills; 0 = no distillation
  int64_t batch_size = 32;      // training examples per step
  double learning_rate = 0;     // AdamW; 0 = the family's default (transformers 1e-4, CNN 5e-4)
  double temperature = 2.0;     // softens teacher and student logits in the KL term
  uint64_t seed = 0;            // batch order and dropout
  const RecallFlag* recalled = nullptr;  // checked before every step
};

// Distillation steps per candidate during search (brief) and for the finalized model (full).
inline constexpr int64_t kSearchDistillSteps = 30;
inline constexpr int64_t kFinalDistillSteps = 300;

// Options of Model::Apply (and of the compression passes it runs).
struct ApplyOptions {
  // The task's data: 4..7-bit layers calibrate (GPTQ) and kActivation ranks units on 128
  // training examples (empty = round to nearest, magnitude); distillation trains on its training
  // split (empty = no distillation).
  TaskData data;
  PruneCriterion criterion = PruneCriterion::kMagnitude;
  DistillOptions distill;
};

}  // namespace shrink::worker
