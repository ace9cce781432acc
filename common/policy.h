// Compression policies: parsing the JSON form and checking a policy against a model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shrink/v1/types.pb.h"

namespace shrink {

inline constexpr double kMaxPrune = 0.9;
inline constexpr int kFullPrecisionBits = 32;
// Fewest bits per weight a policy may ask for (4..7 = group-wise packed, 8 = int8, 9..16 = fp16).
inline constexpr int kMinBits = 4;
// Inputs sharing one fp16 scale and zero point in 4..7-bit group-wise storage (a shorter
// row is one group).
inline constexpr int64_t kQuantGroupSize = 128;

// Parses {"layers": [...]} or {"uniform": {...}}; errors name the field.
absl::StatusOr<v1::Policy> ParsePolicyJson(const std::string& json);

// The JSON form of a policy.
std::string PolicyToJson(const v1::Policy& policy);

// Checks one action's ranges; the error names the layer.
absl::Status ValidateAction(const v1::LayerAction& action);

// Bits as the passes use them: 0 (unset) becomes 32 (unchanged).
int EffectiveBits(int bits);

// Bytes of a [rows, cols] weight stored at `bits` (0 = 32): 4..7 = packed codes plus an fp16
// scale and zero point per group of kQuantGroupSize inputs per row, 8 = int8 plus one fp32
// scale per row, 9..16 = fp16, 32 = fp32. The arithmetic the worker's files obey.
int64_t StoredWeightBytes(int64_t rows, int64_t cols, int bits);

// One validated action per layer of `model`, in the model's order: a uniform
// policy is expanded, a per-layer one must name every layer exactly once.
absl::StatusOr<std::vector<v1::LayerAction>> ResolvePolicy(const v1::Policy& policy,
                                                           const v1::ModelDescription& model);

// A short human-readable form, e.g. "conv1 p0.25/8b conv2 p0.50/8b ...".
std::string PolicySummary(const v1::Policy& policy);

}  // namespace shrink
