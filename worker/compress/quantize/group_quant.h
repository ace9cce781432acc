// Group-wise 4–7-bit weight-only quantization (issue 4, item 3): asymmetric
// min-max scales per (row, group), optional GPTQ error correction from
// calibration inputs, codes bit-packed so the stored bytes really shrink.
// Torch-free API (plain vectors); the implementation uses LibTorch internally.
#pragma once

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

// Options of QuantizeGroupwise.
struct GroupQuantOptions {
  int bits = 4;               // 4..7 bits per weight
  int64_t group_size = 128;   // columns sharing one scale and zero point
  double damping = 0.01;      // GPTQ: added to H's diagonal as a fraction of its mean diagonal
  int64_t block_size = 128;   // GPTQ: columns per lazy batch update
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

// Quantizes `weight` [out, in]. Without calibration inputs (calibration.data == nullptr)
// it rounds each weight to the nearest level of its group's min-max grid (RTN); with
// inputs X [n, in] it runs GPTQ (Frantar et al. 2022, Alg. 1) on H = 2 XᵀX / n.
absl::StatusOr<PackedGroupWeight> QuantizeGroupwise(FloatMatrixView weight, const GroupQuantOptions& options,
                                                    FloatMatrixView calibration = {});

// Checks that a packed weight's fields agree (bits, sizes of codes/scales/zeros); names the field.
absl::Status ValidatePackedGroupWeight(const PackedGroupWeight& weight);

// The fp32 weight [out, in] (row-major) a packed weight stands for.
absl::StatusOr<std::vector<float>> DequantizeGroupwise(const PackedGroupWeight& weight);

// fp16 <-> fp32 helpers for the stored scales and zero points.
uint16_t FloatToHalfBits(float value);
float HalfBitsToFloat(uint16_t bits);

}  // namespace shrink::worker
