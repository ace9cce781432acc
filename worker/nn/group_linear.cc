#include "worker/nn/group_linear.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace shrink::worker {

absl::StatusOr<std::shared_ptr<const GroupwiseLinear>> GroupwiseLinear::Create(const PackedGroupWeight& weight,
                                                                               const torch::Tensor& bias,
                                                                               GroupwiseCompute compute) {
  torch::NoGradGuard no_grad;
  SHRINK_ASSIGN_OR_RETURN(std::vector<float> values, DequantizeGroupwise(weight));
  auto layer = std::make_shared<GroupwiseLinear>();
  layer->compute_ = compute;
  layer->weight_ = torch::from_blob(values.data(), {weight.out, weight.in}, torch::kFloat32).clone();
  torch::Tensor b = bias.defined() ? bias.detach().to(torch::kFloat32).contiguous() : torch::zeros({weight.out});
  if (b.dim() != 1 || b.size(0) != weight.out) {
    return absl::InvalidArgumentError(
        absl::StrCat("GroupwiseLinear: bias has ", b.numel(), " values, the weight has ", weight.out, " outputs"));
  }
  layer->bias_ = b;
  if (compute == GroupwiseCompute::kInt8) {
    SHRINK_RETURN_IF_ERROR(UseOnednnEngine());
    QuantizedWeight q = OnednnLinearAcceptsPerChannel() ? QuantizePerChannel(layer->weight_)
                                                        : QuantizePerTensor(layer->weight_);
    SHRINK_ASSIGN_OR_RETURN(layer->int8_, Int8Linear::Create(q, b));
  }
  return std::shared_ptr<const GroupwiseLinear>(std::move(layer));
}

torch::Tensor GroupwiseLinear::Forward(const torch::Tensor& x) const {
  if (compute_ == GroupwiseCompute::kInt8) return int8_->Forward(x);
  return torch::linear(x, weight_, bias_);
}

}  // namespace shrink::worker
