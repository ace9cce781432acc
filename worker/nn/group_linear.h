// A linear layer whose weight is stored group-wise 4–7-bit (worker/checkpoint/packed_weight.h);
// at load the weight is dequantized once, then computed in fp32 or requantized
// per channel to int8 for the ONEDNN kernels (internal: pulls in torch).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/checkpoint/packed_weight.h"
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

}  // namespace shrink::worker
