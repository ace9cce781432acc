// Leases: a dispatched task belongs to its worker until its lease ends; heartbeats
// renew it (up to max_task), and an expired one is recalled, then re-queued or,
// out of attempts, failed. Coordinator members (coordinator.h).
#include "server/coordinator.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/api_names.h"
#include "common/log.h"

namespace shrink::server {

void Coordinator::HandleHeartbeat(const std::string& worker_id, const v1::Heartbeat& heartbeat) {
  const absl::Time now = absl::Now();
  std::lock_guard<std::mutex> lock(mu_);
  auto w = workers_.find(worker_id);
  if (w == workers_.end()) return;
  if (metrics_) metrics_->HeartbeatReceived();
  int ignored = 0;
  for (const std::string& id : heartbeat.task_ids()) {
    auto it = tasks_.find(id);
    // Finished, recalled, re-queued or someone else's: that worker's word does not count.
    if (it == tasks_.end() || it->second.worker_id != worker_id) {
      ++ignored;
      continue;
    }
    it->second.deadline = std::max(it->second.deadline, LeaseEnd(it->second.dispatched_at, now));
  }
  if (ignored > 0) {
    SHRINK_LOG(INFO) << "heartbeat from " << worker_id << " named " << ignored
                     << " task(s) not dispatched to it; ignored";
  }
  // An answer, as a result is: a worker whose lease expired (stopped, partitioned) takes work again.
  if (w->second.unresponsive) {
    w->second.unresponsive = false;
    SHRINK_LOG(INFO) << "worker " << worker_id << " answers again (heartbeat)";
    PumpLocked();
  }
}

absl::Time Coordinator::LeaseEnd(absl::Time dispatched_at, absl::Time now) const {
  return std::min(now + options_.lease, dispatched_at + options_.max_task);
}

void Coordinator::RequeueOrFailLocked(const std::string& task_id, const std::string& reason) {
  auto it = tasks_.find(task_id);
  if (it == tasks_.end()) return;
  PendingTask& task = it->second;
  if (metrics_) metrics_->CandidateCompleted("lease_expired");
  if (auto w = workers_.find(task.worker_id); w != workers_.end()) w->second.running.erase(task_id);
  task.worker_id.clear();
  if (task.attempts < options_.max_attempts) {
    queue_.push_front(task_id);  // it waited longest
    return;
  }
  // Out of attempts: report it as the worker would have.
  v1::TaskResult failed;
  failed.set_task_id(task_id);
  failed.set_ok(false);
  failed.set_error(absl::StrCat(reason, " ", task.attempts, " times"));
  std::string job_id = task.task.job_id();
  PendingTask copy = std::move(task);
  tasks_.erase(it);
  auto job_it = jobs_.find(job_id);
  if (job_it == jobs_.end()) return;
  JobRuntime& runtime = job_it->second;
  runtime.job.set_in_flight(std::max(0, runtime.job.in_flight() - 1));
  if (copy.task.kind() == v1::Task::EVALUATE) {
    OnEvaluatedLocked(runtime, copy, failed, "");
  } else {
    FailJobLocked(runtime, absl::StrCat(TaskKindName(copy.task.kind()), " task: ", failed.error()));
  }
}

void Coordinator::LeaseLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!shutdown_) {
    changed_.wait_for(lock, absl::ToChronoNanoseconds(options_.lease_check));
    if (shutdown_) break;
    absl::Time now = absl::Now();
    std::vector<std::string> expired;
    for (const auto& [id, task] : tasks_) {
      if (!task.worker_id.empty() && task.deadline < now) expired.push_back(id);
    }
    if (expired.empty()) continue;
    for (const auto& id : expired) {
      auto it = tasks_.find(id);
      // Heartbeats renew a lease up to max_task after dispatch, never beyond.
      const bool capped = it->second.deadline >= it->second.dispatched_at + options_.max_task;
      if (capped) {
        SHRINK_LOG(WARNING) << "task " << id << " on " << it->second.worker_id << " ran past --max-task-seconds ("
                            << absl::FormatDuration(options_.max_task) << ") despite its heartbeats";
      } else {
        SHRINK_LOG(WARNING) << "lease of task " << id << " on " << it->second.worker_id
                            << " expired: no result and no heartbeat for " << absl::FormatDuration(options_.lease);
      }
      if (auto w = workers_.find(it->second.worker_id); w != workers_.end()) {
        v1::CoordinatorMessage recall;
        recall.mutable_cancel()->set_task_id(id);
        w->second.outbox.push_back(std::move(recall));
        w->second.outbox_freed_at.push_back(absl::InfinitePast());
        w->second.wake->notify_all();
        // Hung, cut off or stuck on this task: no more work until it answers again.
        w->second.unresponsive = true;
      }
      RequeueOrFailLocked(id, capped ? "ran past --max-task-seconds" : "lease expired");
    }
    PumpLocked();
  }
}

}  // namespace shrink::server
