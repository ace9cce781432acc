#include "worker/compress/quantize/groupwise_quantize.h"

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

absl::StatusOr<PackedGroupWeight> QuantizeTensorGroupwise(const torch::Tensor& weight, int bits, int64_t group_size,
                                                          const torch::Tensor& calibration) {
  torch::NoGradGuard no_grad;
  torch::Tensor w = weight.detach().to(torch::kFloat32).reshape({weight.size(0), -1}).contiguous();
  GroupQuantOptions options;
  options.bits = bits;
  options.group_size = group_size;
  FloatMatrixView calib;
  torch::Tensor x;
  if (calibration.defined() && calibration.numel() > 0) {
    x = calibration.detach().to(torch::kFloat32).contiguous();
    calib = {x.data_ptr<float>(), x.size(0), x.size(1)};
  }
  return QuantizeGroupwise({w.data_ptr<float>(), w.size(0), w.size(1)}, options, calib);
}

torch::Tensor SubsampleRows(const torch::Tensor& inputs, int64_t max_rows) {
  torch::Tensor x = inputs.detach().to(torch::kFloat32);
  if (x.size(0) <= max_rows) return x.contiguous();
  torch::Tensor index = torch::linspace(0, static_cast<double>(x.size(0) - 1), max_rows).round().to(torch::kInt64);
  return x.index_select(0, index).contiguous();
}

}  // namespace shrink::worker
