// Latency where the model will be deployed: a model exported as the artifact's model.onnx and
// timed in a warm ONNX Runtime process, with the same threads and batch shapes as LibTorch's
// timing (worker/eval/evaluate.h). Torch-free header.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "worker/eval/eval_options.h"
#include "worker/eval/evaluate.h"
#include "worker/model/model.h"
#include "worker/runtime/onnxruntime_process.h"

namespace shrink::worker {

// A model exported into its own folder and loaded in a runner, with the synthetic batch it is
// timed on (the model's LatencyInputs, plus an empty cache for a decoder). Thread-compatible;
// the process it uses serialises requests.
class OnnxRuntimeModel {
 public:
  // Exports `model` as FINALIZE does (default ExportOptions) into a new folder under
  // `work_dir`, and loads it in `process` with options.threads threads (0 = all cores).
  // Export errors name the layer; ONNX Runtime's load errors come with its message.
  static absl::StatusOr<std::unique_ptr<OnnxRuntimeModel>> Open(std::shared_ptr<OnnxRuntimeProcess> process,
                                                                const Model& model, const EvalOptions& options,
                                                                const std::string& work_dir);
  // Unloads the session and removes the folder.
  ~OnnxRuntimeModel();
  OnnxRuntimeModel(const OnnxRuntimeModel&) = delete;
  OnnxRuntimeModel& operator=(const OnnxRuntimeModel&) = delete;

  // The runner it is loaded in.
  const std::shared_ptr<OnnxRuntimeProcess>& process() const { return process_; }
  // Intra-op threads of its session.
  int threads() const { return threads_; }

 private:
  friend absl::StatusOr<LatencyPair> TimeInterleavedInOnnxRuntime(const OnnxRuntimeModel&, const OnnxRuntimeModel&,
                                                                  const EvalOptions&);
  friend absl::StatusOr<double> TimeInOnnxRuntime(const OnnxRuntimeModel&, const EvalOptions&);
  OnnxRuntimeModel() = default;

  std::shared_ptr<OnnxRuntimeProcess> process_;
  std::string dir_;
  int session_ = 0;
  bool loaded_ = false;
  int threads_ = 0;
  std::map<std::string, RuntimeTensor> feeds_;
};

// Times both models in alternating passes after both warm up (options.warmup_runs, then
// options.timed_runs each), inside ONNX Runtime; their median milliseconds. Both must be
// loaded in the same process.
absl::StatusOr<LatencyPair> TimeInterleavedInOnnxRuntime(const OnnxRuntimeModel& first, const OnnxRuntimeModel& second,
                                                         const EvalOptions& options);

// One model's median milliseconds, timed the same way.
absl::StatusOr<double> TimeInOnnxRuntime(const OnnxRuntimeModel& model, const EvalOptions& options);

}  // namespace shrink::worker
