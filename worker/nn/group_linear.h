// A linear layer whose weight is stored group-wise 4–7-bit (group_quant.h);
// at load the weight is dequantized once, then computed in fp32 or requantized
// per channel to int8 for the ONEDNN kernels (internal: pulls in torch).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/compress/quantize/group_quant.h"
#include "worker/nn/int8_linear.h"

namespace shrink::worker {

// How a GroupwiseLinear computes after loading its packed weight.
enum class GroupwiseCompute {
  kFp32,  // dequantized fp32 weight, torch::linear: exact w.r.t. the packed weight
  kInt8,  // dequantized weight requantized per channel to int8 (Int8Linear): faster, adds int8 rounding
};

// y = x Ŵᵀ + b with Ŵ the weight a PackedGroupWeight stands for.
class GroupwiseLinear {
 public:
  // Dequantizes (and for kInt8 requantizes and prepacks) `weight`; `bias` is fp32 [out] or undefined.
  static absl::StatusOr<std::shared_ptr<const GroupwiseLinear>> Create(const PackedGroupWeight& weight,
                                                                       const torch::Tensor& bias,
                                                                       GroupwiseCompute compute);

  // Applies the layer to x [..., in]; thread-safe.
  torch::Tensor Forward(const torch::Tensor& x) const;

  // The fp32 weight [out, in] the packed weight stands for.
  const torch::Tensor& dequantized_weight() const { return weight_; }

 private:
  GroupwiseCompute compute_ = GroupwiseCompute::kFp32;
  torch::Tensor weight_;
  torch::Tensor bias_;
  std::shared_ptr<const Int8Linear> int8_;
};

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

// Quantizes an fp32 weight (2-D [out, in], or a conv weight flattened to [out, in*k*k]).
// `calibration` [n, in] fp32 runs GPTQ; undefined = round to nearest (RTN).
absl::StatusOr<PackedGroupWeight> QuantizeTensorGroupwise(const torch::Tensor& weight, int bits, int64_t group_size,
                                                          const torch::Tensor& calibration);

// The fp32 weight [out, in] a packed weight stands for.
absl::StatusOr<torch::Tensor> DequantizedTensor(const PackedGroupWeight& weight);

// Stacks packed weights of equal in/bits/group size by rows (GPT-2's fused c_attn).
absl::StatusOr<PackedGroupWeight> ConcatRows(const std::vector<PackedGroupWeight>& parts);

// Splits a packed weight into `parts` equal row blocks; error when rows do not divide.
absl::StatusOr<std::vector<PackedGroupWeight>> SplitRows(const PackedGroupWeight& weight, int parts);

// Keeps at most `max_rows` rows of calibration inputs [n, in] (an even stride), as fp32.
torch::Tensor SubsampleRows(const torch::Tensor& inputs, int64_t max_rows);

}  // namespace shrink::worker
