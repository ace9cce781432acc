// Group-wise 4–7-bit weights as checkpoints store them: codes bit-packed LSB-first
// so the stored bytes really shrink, fp16 scales and zero points per (row, group);
// plain vectors and the tensors a checkpoint holds. How weights get quantized into
// this form (RTN, GPTQ) is worker/compress/quantize/groupwise_quantize.h (internal: pulls in torch).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace shrink::worker {

// A row-major float matrix borrowed from the caller (not owned).
struct FloatMatrixView {
  const float* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
};

// A weight [out, in] quantized group-wise: element (r, c) stands for
// (code(r, c) - zero(r, g)) * scale(r, g) with g = c / group_size; the last
// group of a row is shorter when in % group_size != 0.
struct PackedGroupWeight {
  int64_t out = 0;
  int64_t in = 0;
  int bits = 0;                 // 4..7
  int64_t group_size = 0;       // columns per group (> 0)
  std::vector<uint8_t> codes;   // bit-packed codes, row-major, LSB-first, PackedCodeBytes(out*in, bits) bytes
  std::vector<uint16_t> scales; // fp16 bit patterns, [out, NumGroups(in, group_size)]
  std::vector<uint16_t> zeros;  // fp16 bit patterns (real-valued zero points), same shape as scales
};

// Groups per row: ceil(in / group_size).
int64_t NumGroups(int64_t in, int64_t group_size);

// Bytes of `count` codes of `bits` bits each, packed tightly: ceil(count * bits / 8).
int64_t PackedCodeBytes(int64_t count, int bits);

// Bytes stored for a packed weight: packed codes + fp16 scales + fp16 zeros.
int64_t PackedBytes(int64_t out, int64_t in, int bits, int64_t group_size);

// Packs codes (each < 2^bits) into a tight LSB-first bit stream; error names the first bad code.
absl::StatusOr<std::vector<uint8_t>> PackCodes(const std::vector<uint8_t>& codes, int bits);

// Unpacks `count` codes of `bits` bits; error when `packed` has the wrong length.
absl::StatusOr<std::vector<uint8_t>> UnpackCodes(const std::vector<uint8_t>& packed, int64_t count, int bits);

// Checks that a packed weight's fields agree (bits, sizes of codes/scales/zeros); names the field.
absl::Status ValidatePackedGroupWeight(const PackedGroupWeight& weight);

// The fp32 weight [out, in] (row-major) a packed weight stands for.
absl::StatusOr<std::vector<float>> DequantizeGroupwise(const PackedGroupWeight& weight);

// fp16 <-> fp32 helpers for the stored scales and zero points.
uint16_t FloatToHalfBits(float value);
float HalfBitsToFloat(uint16_t bits);

// A packed weight as the three tensors a checkpoint stores: codes U8 [bytes], scales and
// zero points F16 [out, groups].
struct PackedTensors {
  torch::Tensor packed, scales, zeros;
};

// The stored tensors of a packed weight.
PackedTensors ToTensors(const PackedGroupWeight& weight);

// The packed weight [out, in] that stored tensors stand for; errors name `what` and the bad tensor.
absl::StatusOr<PackedGroupWeight> FromTensors(const PackedTensors& tensors, int64_t out, int64_t in, int bits,
                                              int64_t group_size, const std::string& what);

// The fp32 weight [out, in] a packed weight stands for.
absl::StatusOr<torch::Tensor> DequantizedTensor(const PackedGroupWeight& weight);

// Stacks packed weights of equal in/bits/group size by rows (GPT-2's fused c_attn).
absl::StatusOr<PackedGroupWeight> ConcatRows(const std::vector<PackedGroupWeight>& parts);

// Splits a packed weight into `parts` equal row blocks; error when rows do not divide.
absl::StatusOr<std::vector<PackedGroupWeight>> SplitRows(const PackedGroupWeight& weight, int parts);

}  // namespace shrink::worker
