// A policy applied to a transformer checkpoint (internal: pulls in torch): pruning
// (prune/transformer_prune.h), distillation (distill/), then quantization
// (quantize/transformer_quantize.h), in the order and stages the policy asks for.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "shrink/v1/types.pb.h"
#include "worker/compress/compress_options.h"
#include "worker/data/token_batches.h"
#include "worker/checkpoint/transformer_checkpoint.h"
#include "worker/compress/prune/transformer_prune.h"
#include "worker/compress/quantize/transformer_quantize.h"

namespace shrink::worker {

// How heads and neurons are ranked for pruning.
enum class PruneImportance {
  kMagnitude,   // weight L1 norms (UnitImportance)
  kActivation,  // activations on the calibration batches (ActivationImportance); magnitude without them
};

// Training data and settings for distilling during compression (empty `train` = none).
struct TransformerDistillation {
  std::vector<TokenBatch> train;
  DistillOptions options;
};

// Pruning, distillation, then quantization under validated `actions` (one per layer, in
// TransformerLayerGroups order): blocks whose attention and FFN both reach kRemoveBlockPrune
// are removed, other heads / neurons pruned by `importance`. When the actions' distill
// strengths give it steps (DistillSteps), pruning runs in two stages, each followed by
// distillation from `fp32` (one stage after pruning when nothing is pruned). 4..7-bit
// linears are calibrated on `calibration` (recorded on the final fp32 student) when given.
// Calibration and activation importance run on `device` (distillation on the CPU). The result
// is marked compressed.
absl::StatusOr<TransformerWeights> CompressTransformer(const TransformerWeights& fp32,
                                                       const std::vector<shrink::v1::LayerAction>& actions,
                                                       const std::vector<CalibrationBatch>& calibration = {},
                                                       PruneImportance importance = PruneImportance::kMagnitude,
                                                       const TransformerDistillation& distill = {},
                                                       torch::Device device = torch::kCPU);

}  // namespace shrink::worker
