// Recalling a running task: the coordinator sends a cancel for a task whose job was
// cancelled or whose lease expired; the worker sets the task's flag, and the task's long
// passes (stages, distillation steps, a simulated wait) check it and stop.
#pragma once

#include <atomic>

#include "absl/status/status.h"

namespace shrink {

// Set by the worker's stream reader when the coordinator recalls the task.
using RecallFlag = std::atomic<bool>;

// CANCELLED once `recalled` is set; OK when it is null or unset.
inline absl::Status CheckNotRecalled(const RecallFlag* recalled) {
  if (recalled != nullptr && recalled->load(std::memory_order_relaxed)) {
    return absl::CancelledError("the coordinator recalled this task");
  }
  return absl::OkStatus();
}

}  // namespace shrink
