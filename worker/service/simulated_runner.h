// `shrink-worker --simulate SECONDS`: answers tasks with synthetic results
// after a delay, without loading models or data, so the coordinator can be
// driven at scale on one machine (tests, bench/load).
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "shrink/v1/worker_pool.grpc.pb.h"
#include "common/recall.h"

namespace shrink::worker {

struct SimulateOptions {
  double seconds = 1.0;    // delay before each answer (the "evaluation time")
  double fail_rate = 0.0;  // fraction of evaluation attempts whose pass throws, [0, 1]
};

// The reference CNN's layers (conv1, conv2, fc1, fc2) with `bytes` on disk:
// what a simulated DESCRIBE reports, whatever the uploaded files contain.
v1::ModelDescription SimulatedDescription(int64_t bytes);

// Deterministic metrics of `policy` on `model`: size from the policy
// arithmetic (agent/budget), retention falling with pruning and low bits,
// latency falling with the pruned multiply-adds. Errors name the layer.
absl::StatusOr<v1::Evaluation> SimulatedEvaluation(const v1::ModelDescription& model,
                                                   const v1::Policy& policy);

// Thread-safe: one instance serves every slot of a worker.
class SimulatedRunner {
 public:
  // `work_dir` holds the small artifact files of FINALIZE tasks.
  SimulatedRunner(SimulateOptions options, std::string work_dir);

  // Waits options.seconds, then answers `task`; FINALIZE uploads a
  // `simulated.json` artifact (policy + metrics) through `stub`. Never
  // throws: a simulated pass failure comes back as ok = false with its error.
  // Once `recalled` is set, the wait ends early with a CANCELLED error.
  v1::TaskResult Run(const v1::Task& task, v1::WorkerPool::StubInterface* stub,
                     const RecallFlag* recalled = nullptr);

 private:
  absl::StatusOr<v1::TaskResult> RunOrThrow(const v1::Task& task, v1::WorkerPool::StubInterface* stub);
  // Whether this attempt of `task_id` fails: a hash of (id, attempt) against fail_rate.
  bool ShouldFail(const std::string& task_id);

  const SimulateOptions options_;
  const std::string work_dir_;
  std::mutex mu_;
  std::map<std::string, int> attempts_;  // per task id, guarded by mu_
  std::atomic<uint64_t> artifacts_{0};
};

}  // namespace shrink::worker
