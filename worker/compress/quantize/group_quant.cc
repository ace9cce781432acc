#include "worker/compress/quantize/group_quant.h"

#include <c10/util/Half.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace shrink::worker {
namespace {

constexpr float kFp16Max = 65504.0f;

// A group's grid: w ≈ (q - zero) * scale, both values exactly representable in fp16.
struct GroupParams {
  float scale = 1;
  float zero = 0;
};

// Asymmetric min-max grid for values in [lo, hi] with codes 0..maxq. The scale is
// rounded UP to fp16 so maxq steps still cover the range; zero = -lo / scale in fp16.
GroupParams MinMaxParams(float lo, float hi, int maxq) {
  float scale = (hi - lo) / static_cast<float>(maxq);
  // A constant group: any scale represents it; |lo| keeps zero = ±1 exact-ish.
  if (!(scale > 0)) scale = std::max(std::abs(lo), 1e-4f);
  c10::Half half_scale(scale);
  if (static_cast<float>(half_scale) < scale) half_scale = c10::Half(half_scale.x + 1, c10::Half::from_bits());
  GroupParams params;
  params.scale = static_cast<float>(half_scale);
  params.zero = static_cast<float>(c10::Half(-lo / params.scale));
  return params;
}

// The code of `w` on a group's grid.
inline float QuantizeValue(float w, const GroupParams& p, int maxq) {
  return std::clamp(std::nearbyint(w / p.scale + p.zero), 0.0f, static_cast<float>(maxq));
}

absl::Status CheckOptions(const GroupQuantOptions& options) {
  if (options.bits < 4 || options.bits > 7) {
    return absl::InvalidArgumentError(absl::StrCat("group quantization: bits must be 4..7, got ", options.bits));
  }
  if (options.group_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("group quantization: group_size must be > 0, got ", options.group_size));
  }
  if (options.block_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("group quantization: block_size must be > 0, got ", options.block_size));
  }
  if (!(options.damping > 0) || !std::isfinite(options.damping)) {
    return absl::InvalidArgumentError(absl::StrCat("group quantization: damping must be > 0, got ", options.damping));
  }
  return absl::OkStatus();
}

absl::Status CheckMatrix(FloatMatrixView m, const char* what) {
  if (m.data == nullptr || m.rows <= 0 || m.cols <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("group quantization: ", what, " must be a non-empty matrix, got ", m.rows, "x", m.cols));
  }
  for (int64_t i = 0; i < m.rows * m.cols; ++i) {
    if (!std::isfinite(m.data[i])) {
      return absl::InvalidArgumentError(absl::StrCat("group quantization: ", what, " has a non-finite value at (",
                                                     i / m.cols, ", ", i % m.cols, ")"));
    }
  }
  return absl::OkStatus();
}

// Result buffers before packing: codes [out, in] and params [out, groups].
struct Unpacked {
  std::vector<uint8_t> codes;
  std::vector<GroupParams> params;
};

Unpacked QuantizeRtn(FloatMatrixView w, const GroupQuantOptions& options) {
  const int maxq = (1 << options.bits) - 1;
  const int64_t groups = NumGroups(w.cols, options.group_size);
  Unpacked result;
  result.codes.resize(w.rows * w.cols);
  result.params.resize(w.rows * groups);
  for (int64_t r = 0; r < w.rows; ++r) {
    const float* row = w.data + r * w.cols;
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t begin = g * options.group_size, end = std::min(w.cols, begin + options.group_size);
      auto [lo, hi] = std::minmax_element(row + begin, row + end);
      const GroupParams p = MinMaxParams(*lo, *hi, maxq);
      result.params[r * groups + g] = p;
      for (int64_t c = begin; c < end; ++c) result.codes[r * w.cols + c] = QuantizeValue(row[c], p, maxq);
    }
  }
  return result;
}

// GPTQ (Frantar et al. 2022, Algorithm 1, with groups as in the reference implementation):
// quantize columns left to right, spreading each column's error onto the not-yet-quantized
// columns through the upper Cholesky factor of H⁻¹; a group's grid is fixed from the
// already-updated weights when the group's first column is reached.
absl::StatusOr<Unpacked> QuantizeGptq(FloatMatrixView weight, FloatMatrixView x, const GroupQuantOptions& options) {
  torch::NoGradGuard no_grad;
  const int maxq = (1 << options.bits) - 1;
  const int64_t out = weight.rows, in = weight.cols, G = options.group_size;
  const int64_t groups = NumGroups(in, G);
  torch::Tensor W = torch::from_blob(const_cast<float*>(weight.data), {out, in}, torch::kFloat32).clone();
  torch::Tensor X = torch::from_blob(const_cast<float*>(x.data), {x.rows, in}, torch::kFloat32);
  torch::Tensor H = X.t().matmul(X).mul_(2.0 / static_cast<double>(x.rows));

  // Inputs that are always zero: the column does not matter; H gets a unit diagonal there.
  torch::Tensor diag = H.diagonal();
  torch::Tensor dead = diag == 0;
  diag.masked_fill_(dead, 1.0);
  W.index_put_({torch::indexing::Slice(), dead}, 0.0);

  const double mean_diag = diag.mean().item<double>();
  torch::Tensor U;
  double damping = options.damping;
  for (int attempt = 0; attempt < 4 && !U.defined(); ++attempt, damping *= 10) {
    torch::Tensor damped = H + torch::eye(in, torch::kFloat32) * (damping * mean_diag);
    auto [L, info] = torch::linalg_cholesky_ex(damped);
    if (info.item<int64_t>() != 0) continue;
    auto [Uinv, info2] = torch::linalg_cholesky_ex(torch::cholesky_inverse(L), /*upper=*/true);
    if (info2.item<int64_t>() == 0) U = Uinv;
  }
  if (!U.defined()) {
    return absl::InvalidArgumentError(
        absl::StrCat("group quantization: the calibration Hessian (", in, "x", in,
                     ") is not positive definite even with damping ", damping / 10, " of its mean diagonal"));
  }

  Unpacked result;
  result.params.resize(out * groups);
  result.codes.resize(out * in);
  std::vector<GroupParams> current(out);  // each row's grid for the group being quantized
  float* w_all = W.data_ptr<float>();
  using torch::indexing::Slice;
  for (int64_t i1 = 0; i1 < in; i1 += options.block_size) {
    const int64_t i2 = std::min(in, i1 + options.block_size), count = i2 - i1;
    // Columns inside a block are done in plain loops (row-major, no per-column tensor ops);
    // the block's error reaches later columns through one matmul.
    torch::Tensor W1 = W.index({Slice(), Slice(i1, i2)}).contiguous();
    torch::Tensor Err1 = torch::zeros({out, count}, torch::kFloat32);
    torch::Tensor Hinv1 = U.index({Slice(i1, i2), Slice(i1, i2)}).contiguous();
    float* w1 = W1.data_ptr<float>();
    float* e1 = Err1.data_ptr<float>();
    const float* h1 = Hinv1.data_ptr<float>();
    for (int64_t i = 0; i < count; ++i) {
      const int64_t col = i1 + i;
      if (col % G == 0) {
        // The group's current values: this block's updated columns, then later blocks' columns.
        const int64_t gend = std::min(in, col + G), g = col / G;
        for (int64_t r = 0; r < out; ++r) {
          float lo = w1[r * count + i], hi = lo;
          for (int64_t j = i; j < std::min(count, gend - i1); ++j) {
            lo = std::min(lo, w1[r * count + j]);
            hi = std::max(hi, w1[r * count + j]);
          }
          for (int64_t c = i2; c < gend; ++c) {
            lo = std::min(lo, w_all[r * in + c]);
            hi = std::max(hi, w_all[r * in + c]);
          }
          current[r] = MinMaxParams(lo, hi, maxq);
          result.params[r * groups + g] = current[r];
        }
      }
      const float* h_row = h1 + i * count;
      const float d = h_row[i];
      for (int64_t r = 0; r < out; ++r) {
        float* row = w1 + r * count;
        const GroupParams& p = current[r];
        const float q = QuantizeValue(row[i], p, maxq);
        result.codes[r * in + col] = static_cast<uint8_t>(q);
        const float err = (row[i] - (q - p.zero) * p.scale) / d;
        e1[r * count + i] = err;
        for (int64_t j = i + 1; j < count; ++j) row[j] -= err * h_row[j];
      }
    }
    if (i2 < in) W.index({Slice(), Slice(i2, in)}).sub_(Err1.matmul(U.index({Slice(i1, i2), Slice(i2, in)})));
  }
  return result;
}

}  // namespace

int64_t NumGroups(int64_t in, int64_t group_size) { return (in + group_size - 1) / group_size; }

int64_t PackedCodeBytes(int64_t count, int bits) { return (count * bits + 7) / 8; }

int64_t PackedBytes(int64_t out, int64_t in, int bits, int64_t group_size) {
  return PackedCodeBytes(out * in, bits) + 2 * 2 * out * NumGroups(in, group_size);
}

uint16_t FloatToHalfBits(float value) { return c10::Half(value).x; }

float HalfBitsToFloat(uint16_t bits) { return static_cast<float>(c10::Half(bits, c10::Half::from_bits())); }

absl::StatusOr<std::vector<uint8_t>> PackCodes(const std::vector<uint8_t>& codes, int bits) {
  if (bits < 1 || bits > 8) return absl::InvalidArgumentError(absl::StrCat("PackCodes: bits must be 1..8, got ", bits));
  const int64_t count = static_cast<int64_t>(codes.size());
  std::vector<uint8_t> packed(PackedCodeBytes(count, bits), 0);
  for (int64_t k = 0; k < count; ++k) {
    const uint32_t v = codes[k];
    if (v >> bits) {
      return absl::InvalidArgumentError(absl::StrCat("PackCodes: code ", v, " at index ", k, " needs more than ", bits,
                                                     " bits"));
    }
    const int64_t bit = k * bits, byte = bit >> 3;
    const int offset = static_cast<int>(bit & 7);
    packed[byte] |= static_cast<uint8_t>(v << offset);
    if (offset + bits > 8) packed[byte + 1] |= static_cast<uint8_t>(v >> (8 - offset));
  }
  return packed;
}

absl::StatusOr<std::vector<uint8_t>> UnpackCodes(const std::vector<uint8_t>& packed, int64_t count, int bits) {
  if (bits < 1 || bits > 8) {
    return absl::InvalidArgumentError(absl::StrCat("UnpackCodes: bits must be 1..8, got ", bits));
  }
  if (count < 0 || static_cast<int64_t>(packed.size()) != PackedCodeBytes(count, bits)) {
    return absl::InvalidArgumentError(absl::StrCat("UnpackCodes: ", count, " codes of ", bits, " bits need ",
                                                   PackedCodeBytes(count, bits), " bytes, got ", packed.size()));
  }
  std::vector<uint8_t> codes(count);
  const uint32_t mask = (1u << bits) - 1;
  const int64_t n = static_cast<int64_t>(packed.size());
  for (int64_t k = 0; k < count; ++k) {
    const int64_t bit = k * bits, byte = bit >> 3;
    uint32_t window = packed[byte];
    if (byte + 1 < n) window |= static_cast<uint32_t>(packed[byte + 1]) << 8;
    codes[k] = static_cast<uint8_t>((window >> (bit & 7)) & mask);
  }
  return codes;
}

absl::StatusOr<PackedGroupWeight> QuantizeGroupwise(FloatMatrixView weight, const GroupQuantOptions& options,
                                                    FloatMatrixView calibration) {
  SHRINK_RETURN_IF_ERROR(CheckOptions(options));
  SHRINK_RETURN_IF_ERROR(CheckMatrix(weight, "weight"));
  const int maxq = (1 << options.bits) - 1;
  for (int64_t i = 0; i < weight.rows * weight.cols; ++i) {
    if (std::abs(weight.data[i]) > kFp16Max * maxq / 2) {
      return absl::InvalidArgumentError(absl::StrCat("group quantization: weight (", i / weight.cols, ", ",
                                                     i % weight.cols, ") = ", weight.data[i],
                                                     " is too large for fp16 scales"));
    }
  }
  Unpacked unpacked;
  if (calibration.data == nullptr) {
    unpacked = QuantizeRtn(weight, options);
  } else {
    SHRINK_RETURN_IF_ERROR(CheckMatrix(calibration, "calibration inputs"));
    if (calibration.cols != weight.cols) {
      return absl::InvalidArgumentError(absl::StrCat("group quantization: calibration inputs have ", calibration.cols,
                                                     " columns, the weight has ", weight.cols, " inputs"));
    }
    SHRINK_ASSIGN_OR_RETURN(unpacked, QuantizeGptq(weight, calibration, options));
  }
  PackedGroupWeight packed;
  packed.out = weight.rows;
  packed.in = weight.cols;
  packed.bits = options.bits;
  packed.group_size = options.group_size;
  SHRINK_ASSIGN_OR_RETURN(packed.codes, PackCodes(unpacked.codes, options.bits));
  packed.scales.reserve(unpacked.params.size());
  packed.zeros.reserve(unpacked.params.size());
  for (const GroupParams& p : unpacked.params) {
    packed.scales.push_back(FloatToHalfBits(p.scale));
    packed.zeros.push_back(FloatToHalfBits(p.zero));
  }
  return packed;
}

absl::Status ValidatePackedGroupWeight(const PackedGroupWeight& w) {
  if (w.bits < 4 || w.bits > 7) return absl::InvalidArgumentError(absl::StrCat("packed weight: bits = ", w.bits, ", must be 4..7"));
  if (w.out <= 0 || w.in <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("packed weight: shape ", w.out, "x", w.in, " must be positive"));
  }
  if (w.group_size <= 0) return absl::InvalidArgumentError(absl::StrCat("packed weight: group_size = ", w.group_size));
  const int64_t code_bytes = PackedCodeBytes(w.out * w.in, w.bits);
  if (static_cast<int64_t>(w.codes.size()) != code_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("packed weight: codes has ", w.codes.size(), " bytes, expected ", code_bytes));
  }
  const int64_t params = w.out * NumGroups(w.in, w.group_size);
  if (static_cast<int64_t>(w.scales.size()) != params) {
    return absl::InvalidArgumentError(
        absl::StrCat("packed weight: scales has ", w.scales.size(), " entries, expected ", params));
  }
  if (static_cast<int64_t>(w.zeros.size()) != params) {
    return absl::InvalidArgumentError(
        absl::StrCat("packed weight: zeros has ", w.zeros.size(), " entries, expected ", params));
  }
  for (int64_t i = 0; i < params; ++i) {
    const float s = HalfBitsToFloat(w.scales[i]), z = HalfBitsToFloat(w.zeros[i]);
    if (!(s > 0) || !std::isfinite(s)) {
      return absl::InvalidArgumentError(absl::StrCat("packed weight: scales[", i, "] = ", s, " must be finite and > 0"));
    }
    if (!std::isfinite(z)) return absl::InvalidArgumentError(absl::StrCat("packed weight: zeros[", i, "] is not finite"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> DequantizeGroupwise(const PackedGroupWeight& w) {
  SHRINK_RETURN_IF_ERROR(ValidatePackedGroupWeight(w));
  SHRINK_ASSIGN_OR_RETURN(std::vector<uint8_t> codes, UnpackCodes(w.codes, w.out * w.in, w.bits));
  const int64_t groups = NumGroups(w.in, w.group_size);
  std::vector<float> result(w.out * w.in);
  for (int64_t r = 0; r < w.out; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      const float s = HalfBitsToFloat(w.scales[r * groups + g]), z = HalfBitsToFloat(w.zeros[r * groups + g]);
      const int64_t end = std::min(w.in, (g + 1) * w.group_size);
      for (int64_t c = g * w.group_size; c < end; ++c) {
        result[r * w.in + c] = (static_cast<float>(codes[r * w.in + c]) - z) * s;
      }
    }
  }
  return result;
}

}  // namespace shrink::worker
