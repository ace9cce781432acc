// A linear layer computed by LibTorch's dynamic-quantized int8 kernels on the
// ONEDNN engine, for weights stored as in checkpoint/int8_weight.h (internal: pulls in torch).
// ONEDNN's quantized linear is CPU-only: on a GPU the same stored int8 weight
// (same bytes on disk) is dequantized once into an fp16 weight on the device.
#pragma once

#include <ATen/native/quantized/PackedParams.h>
#include <torch/torch.h>

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/checkpoint/int8_weight.h"

namespace shrink::worker {

// Selects the ONEDNN quantized engine; error when this LibTorch lacks it.
absl::Status UseOnednnEngine();

// True when ONEDNN's linear prepack takes per-channel weights (probed once).
bool OnednnLinearAcceptsPerChannel();

// y = x W^T + b for a weight stored in int8 (or group-wise 4..7-bit, see CreateOnDevice).
// On the CPU: W prepacked for ONEDNN, activations quantized per batch on the fly (dynamic
// quantization), bias and output in fp32. On a GPU: W dequantized to fp16 on the device, the
// product is an fp16 GEMM (activations cast to fp16 and the output back to their type).
class Int8Linear {
 public:
  // Prepacks `weight` for `device` (CPU: ONEDNN; GPU: dequantized fp16); `bias` is fp32 [out].
  // Errors when the engine rejects the weight.
  static absl::StatusOr<std::shared_ptr<const Int8Linear>> Create(const QuantizedWeight& weight,
                                                                  const torch::Tensor& bias,
                                                                  torch::Device device = torch::kCPU);

  // A layer on a non-CPU `device` computing with `weight` (fp32 [out, in], already
  // dequantized, e.g. from group-wise 4..7-bit codes) as fp16; `bias` fp32 [out].
  static absl::StatusOr<std::shared_ptr<const Int8Linear>> CreateOnDevice(const torch::Tensor& weight,
                                                                          const torch::Tensor& bias,
                                                                          torch::Device device);

  // Applies the layer to x [..., in] (on the layer's device); thread-safe.
  torch::Tensor Forward(const torch::Tensor& x) const;

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }

 private:
  c10::intrusive_ptr<LinearPackedParamsBase> packed_;  // CPU
  torch::Tensor half_weight_, half_bias_;                // GPU: fp16 [out, in] and [out]
  int64_t in_features_ = 0;
  int64_t out_features_ = 0;
};

}  // namespace shrink::worker
