// Feeding ONNX Runtime: LibTorch tensors as the runner's tensors, and the empty cache a decoder
// export declares. Used wherever Shrink runs an export (latency, predict).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"
#include "worker/runtime/onnxruntime_process.h"

namespace shrink::worker {

// `tensor` (on any device, any layout) as int64 when it is int64, else as float32.
RuntimeTensor ToRuntimeTensor(const at::Tensor& tensor);

// A float32 RuntimeTensor as a LibTorch tensor (a copy); InvalidArgument for another type.
absl::StatusOr<at::Tensor> FromRuntimeTensor(const RuntimeTensor& tensor);

// A decoder's cache inputs (past_key_values.*) with their (heads, head_dim), read from the
// declared shapes in export.json's text; empty for an export without a cache.
using PastInputShapes = std::map<std::string, std::pair<int64_t, int64_t>>;
absl::StatusOr<PastInputShapes> ReadPastInputShapes(const std::string& export_json);

// Adds an empty cache, [batch, heads, 0, head_dim], for each input of `shapes` that `feeds` lacks.
void AddEmptyPastInputs(const PastInputShapes& shapes, int64_t batch, std::map<std::string, RuntimeTensor>* feeds);

}  // namespace shrink::worker
