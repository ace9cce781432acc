// A policy applied to the CNN checkpoint (internal: pulls in torch): pruning
// (prune/cnn_prune.h), distillation (distill/), then quantization (quantize/cnn_quantize.h).
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "shrink/v1/types.pb.h"
#include "worker/checkpoint/cnn_checkpoint.h"
#include "worker/compress/prune/cnn_prune.h"
#include "worker/compress/quantize/cnn_quantize.h"
#include "worker/compress/compress_options.h"

namespace shrink::worker {

// Training images and settings for distilling during compression (undefined images = none).
struct CnnDistillation {
  torch::Tensor images, labels;
  DistillOptions options;
};

// Pruning, distillation, then quantization under validated `actions`. When the actions'
// distill strengths give it steps (DistillSteps), pruning runs in two stages, each followed by
// distillation from `fp32` (one stage when nothing is pruned). 4..7-bit layers are calibrated
// on `calibration` images (undefined = RTN). With PruneCriterion::kActivation and calibration
// images, every stage ranks units by CnnActivationImportance of the model it prunes (the second
// stage on the distilled weights); otherwise (or without images) by weight L1. The result is
// marked compressed.
absl::StatusOr<CnnCheckpoint> CompressCnn(const CnnCheckpoint& fp32,
                                          const std::vector<shrink::v1::LayerAction>& actions,
                                          const torch::Tensor& calibration = torch::Tensor(),
                                          const CnnDistillation& distill = {},
                                          PruneCriterion criterion = PruneCriterion::kMagnitude);

}  // namespace shrink::worker
