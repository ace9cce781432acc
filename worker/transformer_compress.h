// Compression passes on transformer checkpoints (internal: pulls in torch):
// structural pruning of attention heads and FFN neurons (rows / columns are
// physically removed), then per-layer storage: int8 (ONEDNN dynamic linears,
// per-row embeddings), fp16, or fp32.
//
// Extension points (issue 4): UnitImportance is the one place that ranks heads
// and neurons (Taylor importance plugs in beside the weight magnitude); a block
// removal pass would drop "blocks.N.*" tensors and renumber before Quantize;
// sub-8-bit storage adds schemes to QuantizeTransformer and BuildTransformer.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "shrink/v1/types.pb.h"
#include "worker/transformer_checkpoint.h"

namespace shrink::worker {

// Importance of each unit of a prunable layer: per head for "attention" (L1 of its q, k, v
// rows and o columns), per neuron for "ffn" (L1 of its fc1 row and fc2 column). fp32 [units].
torch::Tensor UnitImportance(const TransformerWeights& weights, const TransformerLayerGroup& group);

// The units kept when round(ratio * units) of the least important are removed (at least one
// stays; ties keep the lower index), sorted ascending.
torch::Tensor KeptByImportance(const torch::Tensor& importance, double ratio);

// Kept heads / neurons per prunable layer name.
using KeptTransformerUnits = std::map<std::string, torch::Tensor>;

// Removes every head / neuron not kept (layers absent from `kept` stay whole). Needs fp32 weights.
absl::StatusOr<TransformerWeights> PruneTransformer(const TransformerWeights& fp32, const KeptTransformerUnits& kept);

// Re-stores each named layer at its bits: 8 = int8, 9..16 = fp16, 32 = unchanged.
absl::StatusOr<TransformerWeights> QuantizeTransformer(const TransformerWeights& fp32,
                                                       const std::map<std::string, int>& bits);

// Pruning then quantization under validated `actions` (one per layer, in
// TransformerLayerGroups order); the result is marked compressed.
absl::StatusOr<TransformerWeights> CompressTransformer(const TransformerWeights& fp32,
                                                       const std::vector<shrink::v1::LayerAction>& actions);

}  // namespace shrink::worker
