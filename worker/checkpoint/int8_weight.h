// Symmetric int8 weights as checkpoints store them: int8 values and fp32 scales
// (per output channel or per tensor, zero point 0). The kernel that computes with
// them is worker/nn/int8_linear.h (internal: pulls in torch).
#pragma once

#include <torch/torch.h>

namespace shrink::worker {

// An int8 weight and its fp32 scales: real value = values * scale (zero point 0).
struct QuantizedWeight {
  torch::Tensor values;  // int8, the weight's shape
  torch::Tensor scales;  // float32, [out] per output channel or [1] per tensor
};

// Quantizes `weight` ([out, ...]) symmetrically with one scale per output channel.
QuantizedWeight QuantizePerChannel(const torch::Tensor& weight);

// Quantizes `weight` symmetrically with one scale for the whole tensor.
QuantizedWeight QuantizePerTensor(const torch::Tensor& weight);

// The fp32 weight a quantized one stands for.
torch::Tensor Dequantize(const QuantizedWeight& weight);

}  // namespace shrink::worker
