// The size budget: predicting a policy's bytes from the model description,
// and clamping actions so every candidate meets the target (as AMC/HAQ do,
// rather than hoping the reward teaches it).
#pragma once

#include <vector>

#include "shrink/v1/types.pb.h"

namespace shrink::agent {

// Every bit width a search may give a layer, from the most compressed: one per storage scheme,
// 4 = group-wise packed (GPTQ), 8 = int8 kernels, 16 = fp16 storage, 32 = unchanged. 5..7 bits
// (policies may use them) cost the agent action resolution for little: with six levels the
// DDPG agent no longer learned the synthetic reward of tests/agent in its 60 episodes.
inline constexpr int kActionBitLevels[] = {4, 8, 16, 32};
inline constexpr int kNumActionBitLevels = 4;

// The largest prune ratio the size clamp counts on from the layers still to come. Counting on
// kMaxPrune let early layers stay gentle and left the tail of a transformer to be pruned at
// the maximum, which removes whole blocks (worker kRemoveBlockPrune): 12 of 48 DDPG candidates
// on the reference BERT lost their last blocks that way, most of them below the retention
// floor. The clamp falls back to kMaxPrune only when the target needs it.
inline constexpr double kClampPlanPrune = 0.8;

// The widths of kActionBitLevels a job's searches offer per layer: 4 always, and a wider one
// only when the whole model at that width, prunable layers at kClampPlanPrune, fits
// `target_size`. A width no uniform policy can afford makes a layer that takes it a debt the
// size clamp collects from the layers after it, as far as removing whole blocks; and on a CPU
// worker 16 and 32 bits buy no speed (only 4 and 8 run int8 kernels). Ascending.
std::vector<int> OfferedBitWidths(const v1::ModelDescription& model, double target_size);

// Predicted weight bytes of the model after `actions` (one per layer, in order), priced
// exactly as the worker stores them (common/policy.h StoredWeightBytes: packed 4..7-bit
// codes + fp16 group scales/zeros, int8 + row scales, fp16, fp32; biases and norms fp32).
// Pruning a CNN layer's outputs also shrinks the next layer's inputs; a transformer
// block whose attention and ffn both reach the maximum prune ratio counts as removed
// (worker/compress/transformer_compress.h kRemoveBlockPrune), except the last one left.
double EstimateBytes(const v1::ModelDescription& model, const std::vector<v1::LayerAction>& actions);

// What a compressed layer adds to the files besides its weights, as upper bounds: its entry
// in config.json (quantization scheme, kept heads/units) and one safetensors header entry
// (name, dtype, shape, offsets) per extra tensor (scales, zeros).
inline constexpr int64_t kConfigBytesPerCompressedLayer = 256;
inline constexpr int64_t kHeaderBytesPerTensor = 160;

// Predicted growth of config.json and the safetensors header after `actions`, in bytes.
double EstimateMetadataGrowth(const v1::ModelDescription& model, const std::vector<v1::LayerAction>& actions);

// Predicted file bytes after / file bytes before: weights as EstimateBytes prices them, plus
// the files' fixed overhead (model.bytes() minus the weights) on both sides, plus the
// metadata growth on the candidate's side. Weights only when model.bytes() is unknown (0).
double EstimateSizeRatio(const v1::ModelDescription& model,
                         const std::vector<v1::LayerAction>& actions);

// Makes `actions` meet `target_size` (a size ratio): first lowers bits to 8
// on the largest layers, then to 4, then raises prune ratios of prunable
// layers evenly, up to 0.9. Returns whether the target is met.
bool ClampToSizeTarget(const v1::ModelDescription& model, double target_size,
                       std::vector<v1::LayerAction>* actions);

// Wraps per-layer actions as a Policy.
v1::Policy ToPolicy(const std::vector<v1::LayerAction>& actions);

}  // namespace shrink::agent
