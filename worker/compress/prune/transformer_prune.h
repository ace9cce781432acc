// Structural pruning of transformers: attention heads and FFN neurons ranked by weight
// magnitude or by their activations, then physically removed (rows and columns), and whole
// blocks removed (internal: pulls in torch).
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
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

// A block is removed whole when its attention and its FFN both have a prune ratio of at
// least this (the policy maximum): the residual stream then skips it.
inline constexpr double kRemoveBlockPrune = 0.9;

// The model without `blocks` (indices): later blocks are renumbered, their per-layer shapes
// and storage move with them. At least one block must stay.
absl::StatusOr<TransformerWeights> RemoveBlocks(const TransformerWeights& weights, const std::vector<int>& blocks);

}  // namespace shrink::worker
