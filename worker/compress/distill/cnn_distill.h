// Knowledge distillation of a pruned CNN from its uncompressed teacher (internal:
// pulls in torch): task loss + temperature-softened logits + each pruned layer's
// feature map matched against the teacher's at the channels it kept, weighted by
// that layer's distill strength.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "worker/checkpoint/cnn_checkpoint.h"
#include "worker/compress/compress_options.h"

namespace shrink::worker {

// Adam learning rate when DistillOptions leaves it at 0.
inline constexpr double kCnnDistillLearningRate = 5e-4;

// One distillation stage of the CNN.
struct CnnDistillPlan {
  int64_t steps = 0;                             // optimizer steps
  DistillOptions options;                        // learning rate 0 = kCnnDistillLearningRate
  std::map<std::string, torch::Tensor> teacher_units;  // conv1 / conv2 / fc1: each student unit's teacher unit
  std::map<std::string, double> layer_weight;          // conv1 / conv2 / fc1: feature-matching weight
};

// Fine-tunes a copy of the fp32 `student` against the fp32 `teacher` on batches drawn (seeded)
// from `images` / `labels` and returns the trained checkpoint (same shapes and storage).
absl::StatusOr<CnnCheckpoint> DistillCnn(const CnnCheckpoint& teacher, const CnnCheckpoint& student,
                                         const torch::Tensor& images, const torch::Tensor& labels,
                                         const CnnDistillPlan& plan);

}  // namespace shrink::worker
