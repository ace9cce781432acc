#include "worker/nn/int8_linear.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace shrink::worker {
namespace {

at::Tensor MakeQuantized(const QuantizedWeight& weight) {
  if (weight.scales.numel() == 1) {
    return at::_make_per_tensor_quantized_tensor(weight.values, weight.scales.item<double>(), 0);
  }
  return at::_make_per_channel_quantized_tensor(
      weight.values, weight.scales.to(torch::kFloat64),
      torch::zeros({weight.scales.numel()}, torch::kInt64), /*axis=*/0);
}

using PrepackFn = c10::intrusive_ptr<LinearPackedParamsBase>(at::Tensor, c10::optional<at::Tensor>);

c10::intrusive_ptr<LinearPackedParamsBase> Prepack(const at::Tensor& qweight, const at::Tensor& bias) {
  static const auto prepack = c10::Dispatcher::singleton()
                                  .findSchemaOrThrow("quantized::linear_prepack", "")
                                  .typed<PrepackFn>();
  return prepack.call(qweight, c10::optional<at::Tensor>(bias));
}

}  // namespace

absl::Status UseOnednnEngine() {
  auto& context = at::globalContext();
  const auto& engines = context.supportedQEngines();
  if (std::find(engines.begin(), engines.end(), at::QEngine::ONEDNN) == engines.end()) {
    return absl::FailedPreconditionError("this LibTorch build has no ONEDNN quantized engine");
  }
  if (context.qEngine() != at::QEngine::ONEDNN) context.setQEngine(at::QEngine::ONEDNN);
  return absl::OkStatus();
}

bool OnednnLinearAcceptsPerChannel() {
  static const bool accepted = [] {
    if (!UseOnednnEngine().ok()) return false;
    try {
      torch::NoGradGuard no_grad;
      torch::Tensor weight = torch::arange(1, 13, torch::kFloat32).reshape({3, 4}) / 10;
      QuantizedWeight q = QuantizePerChannel(weight);
      auto packed = Prepack(MakeQuantized(q), torch::zeros({3}));
      torch::Tensor x = torch::ones({2, 4});
      torch::Tensor got = packed->apply_dynamic(x);
      torch::Tensor want = torch::matmul(x, Dequantize(q).t());
      return torch::allclose(got, want, /*rtol=*/0.05, /*atol=*/0.05);
    } catch (const std::exception&) {
      return false;
    }
  }();
  return accepted;
}

absl::StatusOr<std::shared_ptr<const Int8Linear>> Int8Linear::CreateOnDevice(const torch::Tensor& weight,
                                                                            const torch::Tensor& bias,
                                                                            torch::Device device) {
  if (device.is_cpu()) return absl::InvalidArgumentError("Int8Linear::CreateOnDevice is for GPUs; the CPU uses Create");
  if (weight.dim() != 2 || !bias.defined() || bias.dim() != 1 || bias.size(0) != weight.size(0)) {
    return absl::InvalidArgumentError("device linear: weight must be 2-D [out, in] and bias [out]");
  }
  try {
    torch::NoGradGuard no_grad;
    auto layer = std::make_shared<Int8Linear>();
    layer->half_weight_ = weight.detach().to(device, torch::kFloat16).contiguous();
    layer->half_bias_ = bias.detach().to(device, torch::kFloat16).contiguous();
    layer->out_features_ = weight.size(0);
    layer->in_features_ = weight.size(1);
    return std::shared_ptr<const Int8Linear>(std::move(layer));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("moving a quantized linear to ", device.str(), ": ", e.what_without_backtrace()));
  }
}

absl::StatusOr<std::shared_ptr<const Int8Linear>> Int8Linear::Create(const QuantizedWeight& weight,
                                                                    const torch::Tensor& bias, torch::Device device) {
  if (!device.is_cpu()) {
    if (weight.values.dim() != 2 || weight.values.scalar_type() != torch::kInt8) {
      return absl::InvalidArgumentError("int8 linear weight must be a 2-D int8 tensor");
    }
    // No int8 GEMM for dynamic-quantized linears on GPUs in LibTorch: the int8 weight is
    // dequantized (exactly: int8 * scale) and computed in fp16 there.
    return CreateOnDevice(Dequantize(weight), bias.to(torch::kFloat32), device);
  }
  if (auto status = UseOnednnEngine(); !status.ok()) return status;
  if (weight.values.dim() != 2 || weight.values.scalar_type() != torch::kInt8) {
    return absl::InvalidArgumentError("int8 linear weight must be a 2-D int8 tensor");
  }
  try {
    torch::NoGradGuard no_grad;
    auto layer = std::make_shared<Int8Linear>();
    layer->packed_ = Prepack(MakeQuantized(weight), bias.to(torch::kFloat32).contiguous());
    layer->out_features_ = weight.values.size(0);
    layer->in_features_ = weight.values.size(1);
    return std::shared_ptr<const Int8Linear>(std::move(layer));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("int8 linear prepack failed: ", e.what_without_backtrace()));
  }
}

torch::Tensor Int8Linear::Forward(const torch::Tensor& x) const {
  if (half_weight_.defined()) {
    return torch::linear(x.to(torch::kFloat16), half_weight_, half_bias_).to(x.scalar_type());
  }
  // apply_dynamic only reads the packed weight, so concurrent calls are safe.
  return packed_->apply_dynamic(x.contiguous(), /*reduce_range=*/false);
}

}  // namespace shrink::worker
