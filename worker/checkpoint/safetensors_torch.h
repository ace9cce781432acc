// Conversions between safetensors tensors and torch::Tensor (internal: pulls in torch).
#pragma once

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "worker/checkpoint/safetensors.h"

namespace shrink::worker {

// A contiguous CPU tensor copied out of `view` (the file's bytes may be unaligned).
absl::StatusOr<torch::Tensor> ToTorch(const SafetensorsTensorView& view);

// The bytes of `tensor` (moved to CPU, made contiguous) in safetensors form.
absl::StatusOr<SafetensorsTensor> FromTorch(const torch::Tensor& tensor);

}  // namespace shrink::worker
