// Which runtimes this worker can measure latency in, for RegisterWorkerRequest.runtimes.
// Torch-free.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace shrink::worker {

// OK when ONNX Runtime's runner starts and answers on this machine; else why not (node,
// the runner or onnxruntime-node missing, or the runner dying at start).
absl::Status CheckOnnxRuntime();

// `names` when each is a known runtime; else InvalidArgument naming the unknown one.
absl::StatusOr<std::vector<std::string>> CheckRuntimeNames(const std::vector<std::string>& names);

// The runtimes to advertise: `requested` when not empty (each must be a known name, and
// onnxruntime must pass CheckOnnxRuntime: the error says what is missing), else libtorch plus
// onnxruntime when CheckOnnxRuntime passes.
absl::StatusOr<std::vector<std::string>> ResolveRuntimes(const std::vector<std::string>& requested);

}  // namespace shrink::worker
