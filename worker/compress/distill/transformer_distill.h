// Knowledge distillation of a pruned transformer from its uncompressed teacher
// (internal: pulls in torch). The student learns the teacher's temperature-
// softened logits and the task's labels; each student block also matches the
// output and the attention maps of the teacher block it descends from, weighted
// by that block's distill strength.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/compress/compress_options.h"
#include "worker/data/token_batches.h"
#include "worker/checkpoint/transformer_checkpoint.h"

namespace shrink::worker {

// What one distillation stage trains and how the student's blocks map to the teacher's.
struct TransformerDistillPlan {
  int64_t steps = 0;                         // optimizer steps of this stage
  DistillOptions options;                    // learning rate 0 = kTransformerDistillLearningRate
  std::vector<int64_t> teacher_block;        // per student block: the teacher block it descends from
  std::vector<torch::Tensor> teacher_heads;  // per student block: int64 [heads], each head's teacher head
  std::vector<double> block_weight;          // per student block: weight of its hidden-state and attention terms
};

// AdamW learning rate when DistillOptions leaves it at 0.
inline constexpr double kTransformerDistillLearningRate = 1e-4;

// Loss of the first and last step of a distillation (tests and logs).
struct DistillReport {
  double first_loss = 0;
  double last_loss = 0;
  int64_t steps = 0;
};

// Fine-tunes a copy of fp32 `student` against fp32 `teacher` on `train` batches (cycled in
// a seeded order) for plan.steps steps and returns the trained weights (fp32, same shapes).
absl::StatusOr<TransformerWeights> DistillTransformer(const TransformerWeights& teacher,
                                                      const TransformerWeights& student,
                                                      const std::vector<TokenBatch>& train,
                                                      const TransformerDistillPlan& plan,
                                                      DistillReport* report = nullptr);

}  // namespace shrink::worker
