// How one layer's weight is stored in a checkpoint, for every model family: the scheme names
// config.json records ("quantization" for the CNN, "shrink_quantization" for transformers) and
// the checks they obey. Torch-free.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace shrink::worker {

// Storage schemes.
inline constexpr char kSchemeFloat32[] = "fp32";
inline constexpr char kSchemeFloat16[] = "fp16";  // F16 weight, fp32 compute
inline constexpr char kSchemeInt8WeightPerChannel[] = "int8_weight_per_channel";    // convs: widened at load
inline constexpr char kSchemeInt8WeightPerRow[] = "int8_weight_per_row";            // embeddings: widened at load
inline constexpr char kSchemeInt8DynamicPerChannel[] = "int8_dynamic_per_channel";  // linears: int8 kernel
inline constexpr char kSchemeInt8DynamicPerTensor[] = "int8_dynamic_per_tensor";    // linears: int8 kernel
// 4..7 bits: "<layer>.weight_packed" (U8 codes of the weight as [out, in*k*k], row-major, even
// for GPT-2's Conv1D), "<layer>.weight_scales" / ".weight_zeros" (F16 [out, groups]). Convs and
// embeddings are widened at load; linears compute with the weight requantized per channel to
// int8 (ONEDNN).
inline constexpr char kSchemeGroupwise[] = "groupwise";

// How one layer's weight is stored (bits 32 = fp32, 9..16 = fp16, 8 = int8, 4..7 = group-wise
// packed codes with fp16 scales and zero points per group of inputs).
struct LayerStorage {
  int bits = 32;
  std::string scheme = kSchemeFloat32;
  int64_t group_size = 0;  // group-wise: inputs sharing one scale / zero point
  std::string method;      // group-wise: "gptq" (calibrated) or "rtn" (round to nearest)
};

// What the weight is, which decides its int8 scheme.
enum class WeightRole { kLinear, kConv, kEmbedding };

// Checks that the scheme exists, fits the bits and applies to the role; the error says why
// (callers prefix the file and the layer).
absl::Status CheckStorage(const LayerStorage& storage, WeightRole role);

}  // namespace shrink::worker
