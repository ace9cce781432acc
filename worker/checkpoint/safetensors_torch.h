// Conversions between safetensors tensors and torch::Tensor (internal: pulls in torch).
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "worker/checkpoint/safetensors.h"

namespace shrink::worker {

// A contiguous CPU tensor copied out of `view` (the file's bytes may be unaligned).
// Floating-point values that are NaN or infinite are refused (CheckFinite): a model
// with broken weights would otherwise be scored as if it worked.
absl::StatusOr<torch::Tensor> ToTorch(const SafetensorsTensorView& view);

// OK when `tensor` is not floating point or all its values are finite; else
// InvalidArgument saying how many of its values are NaN or infinite.
absl::Status CheckFinite(const torch::Tensor& tensor);

// CheckFinite on every tensor of `tensors`; the error names the first bad one (`what` + its name).
absl::Status CheckAllFinite(const std::map<std::string, torch::Tensor>& tensors, const std::string& what);

// The bytes of `tensor` (moved to CPU, made contiguous) in safetensors form.
absl::StatusOr<SafetensorsTensor> FromTorch(const torch::Tensor& tensor);

}  // namespace shrink::worker
