// Compression passes on transformer checkpoints (internal: pulls in torch):
// structural pruning of attention heads and FFN neurons (rows / columns are
// physically removed), then per-layer storage: int8 (ONEDNN dynamic linears,
// per-row embeddings), fp16, or fp32.
//
// Heads and neurons are ranked by weight magnitude, or by their activations on
// calibration batches (ActivationImportance); a block whose attention and FFN both
// ask for the maximum prune ratio is removed whole (RemoveBlocks); 4..7-bit layers
// are stored group-wise packed (GPTQ when calibration batches are given).
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

namespace shrink::worker {

// Importance of each unit of a prunable layer: per head for "attention" (L1 of its q, k, v
// rows and o columns), per neuron for "ffn" (L1 of its fc1 row and fc2 column). fp32 [units].
torch::Tensor UnitImportance(const TransformerWeights& weights, const TransformerLayerGroup& group);

// Data-aware importance on calibration inputs (RecordDenseInputs of the layer's attention.o /
// ffn.fc2): per FFN neuron, mean |activation| times the L2 norm of its fc2 column; per head,
// the mean L2 norm of its context's contribution to attention.o's output. fp32 [units].
torch::Tensor ActivationImportance(const TransformerWeights& weights, const TransformerLayerGroup& group,
                                   const torch::Tensor& output_inputs);

// The units kept when round(ratio * units) of the least important are removed (at least one
// stays; ties keep the lower index), sorted ascending.
torch::Tensor KeptByImportance(const torch::Tensor& importance, double ratio);

// Kept heads / neurons per prunable layer name.
using KeptTransformerUnits = std::map<std::string, torch::Tensor>;

// Removes every head / neuron not kept (layers absent from `kept` stay whole). Needs fp32 weights.
absl::StatusOr<TransformerWeights> PruneTransformer(const TransformerWeights& fp32, const KeptTransformerUnits& kept);

// Inputs each linear module saw on calibration data, by canonical module name: fp32 [n, in].
using DenseInputs = std::map<std::string, torch::Tensor>;

// Token batches that calibrate 4..7-bit layers (ids, mask [B, T], 1 = token).
struct CalibrationBatch {
  torch::Tensor ids, mask;
};

// Most calibration rows (tokens) kept per module for GPTQ's Hessian.
inline constexpr int64_t kMaxCalibrationRows = 2048;

// Runs `weights` (fp32 in the named modules) on `batches` on `device` and records the inputs
// of `modules` at real (unmasked) tokens, at most `max_rows` rows each (returned on the CPU).
absl::StatusOr<DenseInputs> RecordDenseInputs(const TransformerWeights& weights,
                                              const std::vector<CalibrationBatch>& batches,
                                              const std::vector<std::string>& modules, int64_t max_rows,
                                              torch::Device device = torch::kCPU);

// A block is removed whole when its attention and its FFN both have a prune ratio of at
// least this (the policy maximum): the residual stream then skips it.
inline constexpr double kRemoveBlockPrune = 0.9;

// The model without `blocks` (indices): later blocks are renumbered, their per-layer shapes
// and storage move with them. At least one block must stay.
absl::StatusOr<TransformerWeights> RemoveBlocks(const TransformerWeights& weights, const std::vector<int>& blocks);

// Re-stores each named layer at its bits: 4..7 = group-wise packed (GPTQ on the module's
// `inputs` when recorded, round to nearest otherwise; embeddings always RTN per row),
// 8 = int8, 9..16 = fp16, 32 = unchanged. CANCELLED between layers once `recalled` is set.
absl::StatusOr<TransformerWeights> QuantizeTransformer(const TransformerWeights& fp32,
                                                       const std::map<std::string, int>& bits,
                                                       const DenseInputs& inputs = {},
                                                       const RecallFlag* recalled = nullptr);

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
