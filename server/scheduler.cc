// Scheduling: the candidate queue, worker slots, max_in_flight and dispatch.
// Coordinator members (coordinator.h), each run with mu_ held.
#include "server/coordinator.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/api_names.h"
#include "common/runtimes.h"

namespace shrink::server {

void Coordinator::DropJobTasksLocked(const std::string& job_id) {
  for (auto it = tasks_.begin(); it != tasks_.end();) {
    if (it->second.task.job_id() != job_id) {
      ++it;
      continue;
    }
    if (!it->second.worker_id.empty()) {
      auto w = workers_.find(it->second.worker_id);
      if (w != workers_.end()) {
        w->second.running.erase(it->first);
        v1::CoordinatorMessage recall;
        recall.mutable_cancel()->set_task_id(it->first);
        w->second.outbox.push_back(std::move(recall));
        w->second.outbox_freed_at.push_back(absl::InfinitePast());
        w->second.wake->notify_all();
      }
    }
    queue_.erase(std::remove(queue_.begin(), queue_.end(), it->first), queue_.end());
    it = tasks_.erase(it);
  }
}

std::map<std::string, int> Coordinator::SlotsByRuntimeLocked() const {
  std::map<std::string, int> slots;
  for (const auto& [id, w] : workers_) {
    if (!w.attached || w.unresponsive) continue;
    for (const std::string& name : w.runtimes) slots[name] += w.info.slots();
  }
  return slots;
}

void Coordinator::UpdateWaitingLocked(JobRuntime& runtime, const std::map<std::string, int>& slots_by_runtime) {
  const std::string wanted = RuntimeOrDefault(runtime.job.spec().runtime());
  std::string waiting;
  if (!IsTerminal(runtime.job.state()) && !runtime.writing_manifest && slots_by_runtime.count(wanted) == 0) {
    std::vector<std::string> others;
    for (const auto& [name, slots] : slots_by_runtime) others.push_back(name);
    waiting = others.empty() ? "waiting for a worker to connect"
                             : absl::StrCat("waiting for a worker with runtime ", wanted,
                                            ": the connected workers have only ", absl::StrJoin(others, ", "));
  }
  if (waiting == runtime.waiting) return;
  runtime.waiting = std::move(waiting);
  runtime.waiting_changes++;
  runtime.wake->notify_all();
}

void Coordinator::EnqueueTaskLocked(JobRuntime& runtime, v1::Task::Kind kind,
                                    const v1::Policy& policy, int64_t candidate_id) {
  PendingTask pending;
  v1::Task& task = pending.task;
  task.set_task_id(absl::StrCat(runtime.job.id(), "-", TaskKindName(kind), "-",
                                candidate_id >= 0 ? candidate_id : 0, "-", ++next_task_number_));
  task.set_job_id(runtime.job.id());
  task.set_kind(kind);
  task.set_runtime(RuntimeOrDefault(runtime.job.spec().runtime()));
  *task.mutable_model_files() = runtime.job.spec().model_files();
  *task.mutable_task() = runtime.job.spec().task();
  *task.mutable_policy() = policy;
  pending.candidate_id = candidate_id;
  queue_.push_back(task.task_id());
  tasks_[task.task_id()] = std::move(pending);
  runtime.job.set_in_flight(runtime.job.in_flight() + 1);
}

void Coordinator::FillJobLocked(JobRuntime& runtime, int total_slots) {
  v1::Job& job = runtime.job;
  if (job.state() == v1::QUEUED) {
    if (job.in_flight() == 0) EnqueueTaskLocked(runtime, v1::Task::DESCRIBE, v1::Policy(), -1);
    return;
  }
  if (job.state() == v1::FINALIZING) {
    if (job.in_flight() == 0 && !runtime.writing_manifest) EnqueueTaskLocked(runtime, v1::Task::FINALIZE, job.best().policy(), -1);
    return;
  }
  if (job.state() != v1::SEARCHING || !runtime.search) return;
  // Keep as many candidates in flight as there are worker slots (K), so the
  // search proposes from its freshest state rather than far ahead.
  int limit = std::max(1, total_slots);
  if (job.spec().max_in_flight() > 0) limit = std::min(limit, job.spec().max_in_flight());
  // While searching, every task in flight is a candidate evaluation.
  while (job.in_flight() < limit && job.evaluated() + job.in_flight() < job.spec().budget()) {
    v1::Policy policy = runtime.search->Propose();
    EnqueueTaskLocked(runtime, v1::Task::EVALUATE, policy, runtime.next_candidate_id++);
  }
  if (job.evaluated() >= job.spec().budget() && job.in_flight() == 0) {
    if (!job.has_best() || job.best().outcome() != "ok") {
      FailJobLocked(runtime, absl::StrCat("all ", job.evaluated(), " candidates failed; last error: ",
                                          runtime.last_candidate.error()));
      return;
    }
    job.set_state(v1::FINALIZING);
    SaveJobLocked(runtime);
    EnqueueTaskLocked(runtime, v1::Task::FINALIZE, job.best().policy(), -1);
  }
}

void Coordinator::PumpLocked() {
  if (shutdown_) return;
  // Once, not once per job: 256 workers x 50 jobs adds up.
  const std::map<std::string, int> slots_by_runtime = SlotsByRuntimeLocked();
  for (auto& [id, runtime] : jobs_) {
    // A job being submitted waits for its first write to be durable.
    if (runtime.visible_version == 0) continue;
    if (!IsTerminal(runtime.job.state())) {
      auto slots = slots_by_runtime.find(RuntimeOrDefault(runtime.job.spec().runtime()));
      FillJobLocked(runtime, slots == slots_by_runtime.end() ? 0 : slots->second);
    }
    UpdateWaitingLocked(runtime, slots_by_runtime);  // a finished job waits for nothing
  }
  RetireFinishedLocked();
  DispatchLocked();
  UpdateGaugesLocked();
}

void Coordinator::DispatchLocked() {
  // Oldest first; a task whose runtime no free worker has stays queued, in order, and the
  // tasks behind it still go out. Ends when no worker has a free slot.
  for (auto next = queue_.begin(); next != queue_.end();) {
    auto it = tasks_.find(*next);
    if (it == tasks_.end()) {
      next = queue_.erase(next);
      continue;
    }
    PendingTask& task = it->second;
    // The attached worker with the most free slots that has the task's runtime takes it. A retry
    // skips the workers where it failed (their runtime may be broken) while another that has the
    // runtime is connected, even a busy one: it waits for that worker's slot.
    const std::string wanted = RuntimeOrDefault(task.task.runtime());
    auto usable = [&](const WorkerState& w) { return w.attached && !w.unresponsive && w.runtimes.count(wanted) > 0; };
    bool avoid_failed = false;
    if (!task.failed_on.empty()) {
      for (const auto& [id, w] : workers_) avoid_failed |= usable(w) && task.failed_on.count(id) == 0;
    }
    WorkerState* best = nullptr;
    std::string best_id;
    int best_free = 0;
    bool any_free = false;
    for (auto& [id, w] : workers_) {
      int free = w.info.slots() - static_cast<int>(w.running.size());
      if (!w.attached || w.unresponsive || free <= 0) continue;
      any_free = true;
      if (!usable(w) || (avoid_failed && task.failed_on.count(id) > 0)) continue;
      if (free > best_free) {
        best = &w;
        best_id = id;
        best_free = free;
      }
    }
    if (!any_free) return;
    if (best == nullptr) {
      ++next;
      continue;
    }
    const std::string task_id = *next;
    next = queue_.erase(next);
    task.worker_id = best_id;
    task.attempts++;
    task.dispatched_at = absl::Now();
    task.deadline = LeaseEnd(task.dispatched_at, task.dispatched_at);
    best->running.insert(task_id);
    v1::CoordinatorMessage message;
    *message.mutable_task() = task.task;
    best->outbox.push_back(std::move(message));
    if (best->freed_at.empty()) {
      best->outbox_freed_at.push_back(absl::InfinitePast());
    } else {
      best->outbox_freed_at.push_back(best->freed_at.front());
      best->freed_at.pop_front();
    }
    best->wake->notify_all();
    if (metrics_) metrics_->CandidateDispatched(TaskKindName(task.task.kind()));
  }
  // Nothing left to hand out: a freed slot now waits for work, not for the dispatcher.
  for (auto& [id, w] : workers_) w.freed_at.clear();
}

}  // namespace shrink::server
