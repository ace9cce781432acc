// The one way a worker turns a task's outcome into the TaskResult it sends:
// shared by the real runner (worker/task_runner) and --simulate (worker/simulated_runner).
#pragma once

#include <functional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "shrink/v1/worker_pool.pb.h"

namespace shrink::worker {

// Runs `body` and packs its outcome: ok with the body's fields, or ok=false and
// the error (an exception thrown by a pass included, as "task threw: ..."); sets
// the task id and the seconds since `start`.
v1::TaskResult RunToResult(const v1::Task& task, absl::Time start,
                           const std::function<absl::StatusOr<v1::TaskResult>()>& body);

}  // namespace shrink::worker
