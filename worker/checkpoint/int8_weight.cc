#include "worker/checkpoint/int8_weight.h"

namespace shrink::worker {
namespace {

constexpr double kInt8Max = 127.0;  // symmetric range [-127, 127] keeps zero exact and the range balanced

// Scale that maps the largest magnitude to 127; 1 for all-zero weights (any scale represents them).
torch::Tensor SymmetricScales(const torch::Tensor& max_abs) {
  torch::Tensor scales = max_abs.to(torch::kFloat64) / kInt8Max;
  return torch::where(scales > 0, scales, torch::ones_like(scales));
}

}  // namespace

QuantizedWeight QuantizePerChannel(const torch::Tensor& weight) {
  torch::NoGradGuard no_grad;
  torch::Tensor w = weight.detach().to(torch::kFloat32).contiguous();
  torch::Tensor scales = SymmetricScales(w.abs().reshape({w.size(0), -1}).amax(1));
  torch::Tensor q = at::quantize_per_channel(w, scales, torch::zeros({w.size(0)}, torch::kInt64), 0, torch::kQInt8);
  return {q.int_repr().contiguous(), scales.to(torch::kFloat32)};
}

QuantizedWeight QuantizePerTensor(const torch::Tensor& weight) {
  torch::NoGradGuard no_grad;
  torch::Tensor w = weight.detach().to(torch::kFloat32).contiguous();
  double scale = SymmetricScales(w.abs().max().reshape({1})).item<double>();
  torch::Tensor q = at::quantize_per_tensor(w, scale, 0, torch::kQInt8);
  return {q.int_repr().contiguous(), torch::tensor({static_cast<float>(scale)}, torch::kFloat32)};
}

torch::Tensor Dequantize(const QuantizedWeight& weight) {
  std::vector<int64_t> scale_shape(weight.values.dim(), 1);
  if (weight.scales.numel() > 1) scale_shape[0] = weight.scales.numel();
  return weight.values.to(torch::kFloat32) * weight.scales.to(torch::kFloat32).reshape(scale_shape);
}

}  // namespace shrink::worker
