// The runtimes a job can target (JobSpec.runtime) and a worker can measure latency in
// (RegisterWorkerRequest.runtimes). Torch-free, header-only.
#pragma once

#include <string>
#include <vector>

namespace shrink {

inline constexpr char kRuntimeLibTorch[] = "libtorch";        // Shrink's own LibTorch modules
inline constexpr char kRuntimeOnnxRuntime[] = "onnxruntime";  // model.onnx in ONNX Runtime (CPU)

// Every runtime name, the default first.
inline const std::vector<std::string>& KnownRuntimes() {
  static const std::vector<std::string> names = {kRuntimeLibTorch, kRuntimeOnnxRuntime};
  return names;
}

// True for a name in KnownRuntimes().
inline bool IsKnownRuntime(const std::string& name) {
  for (const std::string& known : KnownRuntimes()) {
    if (name == known) return true;
  }
  return false;
}

// A job's runtime with the empty default spelled out.
inline std::string RuntimeOrDefault(const std::string& runtime) {
  return runtime.empty() ? kRuntimeLibTorch : runtime;
}

}  // namespace shrink
