// Runs one task from the coordinator: describe a model, evaluate a policy,
// or finalize the best policy into an artifact.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "shrink/v1/worker_pool.grpc.pb.h"
#include "worker/service/blob_cache.h"
#include "worker/data/task_data.h"
#include "worker/eval/eval_options.h"
#include "worker/latency/onnxruntime_latency.h"
#include "worker/model/model.h"
#include "worker/runtime/onnxruntime_process.h"

namespace shrink::worker {

// Thread-safe: a worker runs one task per slot concurrently. Loaded models,
// datasets and baseline accuracies are cached across tasks. Tasks of onnxruntime jobs time
// their latency in one ONNX Runtime process, started at the first such task and kept warm
// (started again if it dies).
class TaskRunner {
 public:
  // `work_dir` holds materialised model folders and artifacts being uploaded; models load
  // onto `device` ("cpu" or "cuda:N", validated by the caller).
  TaskRunner(BlobCache* cache, EvalOptions eval_options, std::string work_dir, std::string device = "cpu");

  // Runs `task`, fetching blobs and uploading artifacts through `stub`.
  // Never throws; failures come back as a result with ok = false and the error. Once
  // `recalled` is set, the task stops at its next check (between stages and distillation
  // steps) with a CANCELLED error.
  v1::TaskResult Run(const v1::Task& task, v1::WorkerPool::StubInterface* stub,
                     const RecallFlag* recalled = nullptr);

 private:
  struct LoadedModel {
    std::unique_ptr<Model> model;
    std::mutex mu;                               // guards baseline_by_split
    std::map<std::string, v1::Metrics> baseline_by_split;  // accuracy is deterministic: measured once
    std::mutex onnx_mu;                          // guards onnx_baseline
    std::shared_ptr<OnnxRuntimeModel> onnx_baseline;  // the model as exported, loaded in the runner
  };

  absl::StatusOr<v1::TaskResult> RunOrError(const v1::Task& task, v1::WorkerPool::StubInterface* stub,
                                            const RecallFlag* recalled);
  absl::StatusOr<std::shared_ptr<LoadedModel>> LoadModel(const v1::Task& task,
                                                         v1::WorkerPool::StubInterface* stub);
  absl::StatusOr<std::shared_ptr<const TaskData>> LoadData(const v1::Task& task,
                                                          v1::WorkerPool::StubInterface* stub);
  // The uncompressed model's metrics on `split`, measured once per model and split
  // (candidates re-time its latency beside their own, see TimeInterleaved).
  absl::StatusOr<v1::Metrics> Baseline(LoadedModel& loaded, const TaskData& data,
                                       const std::string& split, const EvalOptions& eval);
  // The warm ONNX Runtime process, started now if there is none or the last one died.
  absl::StatusOr<std::shared_ptr<OnnxRuntimeProcess>> OnnxRuntime();
  // The uncompressed model loaded in the current ONNX Runtime process (exported once per process).
  absl::StatusOr<std::shared_ptr<OnnxRuntimeModel>> OnnxBaseline(LoadedModel& loaded, const EvalOptions& eval);
  // Sets the baseline's and (when given) the candidate's latency_ms, threads and runtime from
  // timings in `runtime`: interleaved with the candidate, or the baseline alone.
  absl::Status TimeLatency(const std::string& runtime, LoadedModel& loaded, const Model* candidate,
                           const EvalOptions& eval, v1::Metrics* baseline, v1::Metrics* metrics);

  BlobCache* const cache_;
  const EvalOptions eval_options_;
  const std::string work_dir_;
  const std::string device_;
  std::mutex mu_;  // guards the two caches; loading happens under it (rare, and avoids double loads)
  std::map<std::string, std::shared_ptr<LoadedModel>> models_;            // by weights digest
  std::map<std::string, std::shared_ptr<const TaskData>> datasets_;  // by task name and data digests
  std::mutex onnx_mu_;  // guards onnx_
  std::shared_ptr<OnnxRuntimeProcess> onnx_;
};

}  // namespace shrink::worker
