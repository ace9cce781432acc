// The coordinator's lifecycle: create and shut down, the client API, the worker
// registry, results driving each job's search, finalizing and the manifest,
// persistence and gauges. Scheduling, leases and recovery have their own files.
#include "server/coordinator.h"

#include <algorithm>
#include <random>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "agent/reward.h"
#include "common/api_names.h"
#include "common/files.h"
#include "common/log.h"
#include "common/policy.h"
#include "common/runtimes.h"
#include "common/status.h"
#include "server/job_spec_validation.h"
#include "server/manifest.h"

namespace shrink::server {
namespace {

// The artifact file the coordinator adds: policy, shapes, metrics, history.
constexpr char kManifestName[] = "manifest.json";

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

std::string RandomId(const char* prefix) {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard<std::mutex> lock(mu);
  return absl::StrFormat("%s%012x", prefix, rng() & 0xffffffffffffULL);
}

// Better = meets the goal, then higher reward.
bool IsBetter(const v1::CandidateSummary& a, const v1::CandidateSummary& b) {
  if (a.outcome() != "ok") return false;
  if (b.outcome() != "ok") return true;
  if (a.feasible() != b.feasible()) return a.feasible();
  return a.reward() > b.reward();
}

}  // namespace

bool IsTerminal(v1::JobState state) {
  return state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELLED;
}

Coordinator::Coordinator(const CoordinatorOptions& options, CoordinatorMetrics* metrics)
    : options_(options), metrics_(metrics) {}

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(const CoordinatorOptions& options,
                                                                 CoordinatorMetrics* metrics) {
  if (options.state_dir.empty()) return absl::InvalidArgumentError("--state: a folder is required");
  if (options.lease <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--lease-seconds must be > 0");
  }
  if (options.max_task < options.lease) {
    return absl::InvalidArgumentError(absl::StrCat("--max-task-seconds (", absl::FormatDuration(options.max_task),
                                                   ") must be at least --lease-seconds (",
                                                   absl::FormatDuration(options.lease), ")"));
  }
  SHRINK_RETURN_IF_ERROR(MakeDirs(options.state_dir));
  std::unique_ptr<Coordinator> c(new Coordinator(options, metrics));
  SHRINK_ASSIGN_OR_RETURN(c->store_, JobStore::Open(options.state_dir + "/shrink.db"));
  if (!options.fsync_each_commit) SHRINK_RETURN_IF_ERROR(c->store_->SetFsyncEachCommit(false));
  c->commits_ = std::make_unique<CommitQueue>(
      c->store_.get(), [raw = c.get()](std::vector<CommitQueue::Entry>& batch, const std::vector<absl::Status>& statuses) {
        std::lock_guard<std::mutex> lock(raw->mu_);
        raw->PublishLocked(batch, statuses, /*retire=*/true);
      });
  SHRINK_ASSIGN_OR_RETURN(c->blobs_, BlobStore::Open(options.state_dir + "/blobs"));
  c->blobs_->set_max_blob_bytes(options.max_blob_bytes);
  SHRINK_RETURN_IF_ERROR(c->Recover());
  c->lease_thread_ = std::thread([raw = c.get()] { raw->LeaseLoop(); });
  c->finish_thread_ = std::thread([raw = c.get()] { raw->FinishLoop(); });
  return c;
}

Coordinator::~Coordinator() {
  Shutdown();
  commits_.reset();  // commits and publishes what is queued while mu_ and jobs_ still exist
}

void Coordinator::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
    for (auto& [id, w] : workers_) w.wake->notify_all();
    for (auto& [id, runtime] : jobs_) runtime.wake->notify_all();
  }
  changed_.notify_all();
  finalized_added_.notify_all();
  if (lease_thread_.joinable()) lease_thread_.join();
  if (finish_thread_.joinable()) finish_thread_.join();
}

absl::StatusOr<v1::Job> Coordinator::SubmitJob(const v1::JobSpec& spec_in, const std::string& tenant) {
  v1::JobSpec spec = spec_in;
  if (spec.search().empty()) spec.set_search("random");
  if (spec.runtime().empty()) spec.set_runtime(kRuntimeLibTorch);
  SHRINK_RETURN_IF_ERROR(ValidateJobSpec(spec, tenant, *blobs_, *store_));
  std::unique_lock<std::mutex> lock(mu_);
  // Waits until the job's first write is durable (mu_ released meanwhile); the
  // job as clients see it then, or the write's error (the job is dropped).
  auto await_created = [&](const std::string& id) -> absl::StatusOr<v1::Job> {
    published_.wait(lock, [&] {
      auto it = jobs_.find(id);
      return it == jobs_.end() || it->second.visible_version > 0 || !it->second.create_error.ok();
    });
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return store_->GetJob(id);
    if (!it->second.create_error.ok()) return it->second.create_error;
    return VisibleJob(it->second);
  };
  if (!spec.client_request_id().empty()) {
    // An unfinished job (maybe still being created) first, then the store's finished ones.
    for (const auto& [id, runtime] : jobs_) {
      if (runtime.job.tenant() == tenant && runtime.job.spec().client_request_id() == spec.client_request_id()) {
        std::string same = id;
        return await_created(same);
      }
    }
    auto existing = store_->FindJobByRequestId(RequestIdKey(tenant, spec.client_request_id()));
    if (existing.ok()) return store_->GetJob(*existing);
  }
  if (options_.max_active_jobs_per_tenant > 0) {
    int active = 0;
    for (const auto& [id, runtime] : jobs_) {
      active += runtime.job.tenant() == tenant && !IsTerminal(runtime.job.state()) ? 1 : 0;
    }
    if (active >= options_.max_active_jobs_per_tenant) {
      return absl::ResourceExhaustedError(absl::StrCat("tenant ", tenant, " already has ", active,
                                                       " unfinished jobs (the limit); wait or cancel one"));
    }
  }
  v1::Job job;
  job.set_id(RandomId("job-"));
  job.set_tenant(tenant);
  *job.mutable_spec() = spec;
  job.set_state(v1::QUEUED);
  job.set_created_unix_ms(NowMs());
  job.set_updated_unix_ms(job.created_unix_ms());
  JobRuntime& runtime = jobs_[job.id()];
  runtime.job = job;
  runtime.version = 0;  // PersistLocked makes it 1
  PersistLocked(runtime, nullptr, nullptr);
  const std::string id = job.id();
  absl::StatusOr<v1::Job> created = await_created(id);
  if (!created.ok()) {
    jobs_.erase(id);
    return created.status();
  }
  if (metrics_) metrics_->JobSubmitted();
  SHRINK_LOG(INFO) << "job " << id << " submitted: task " << spec.task().name() << ", search "
                   << spec.search() << ", budget " << spec.budget();
  PumpLocked();
  return created;
}

// Reads of the store happen outside mu_: the store's one connection may be busy committing
// a batch (and fsyncing it), and every dispatch waits for mu_. A job leaves jobs_ only once
// its final state is durable, so a job not in jobs_ is answered by the store.
absl::StatusOr<v1::Job> Coordinator::GetJob(const std::string& id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = jobs_.find(id); it != jobs_.end() && it->second.visible_version > 0) return VisibleJob(it->second);
  }
  return store_->GetJob(id);
}

absl::StatusOr<std::vector<v1::Job>> Coordinator::ListJobs() {
  SHRINK_ASSIGN_OR_RETURN(std::vector<v1::Job> jobs, store_->ListJobs());
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& job : jobs) {
    if (auto it = jobs_.find(job.id()); it != jobs_.end() && it->second.visible_version > 0) {
      job = VisibleJob(it->second);
    }
  }
  return jobs;
}

absl::StatusOr<std::vector<v1::CandidateSummary>> Coordinator::ListCandidates(const std::string& id) {
  SHRINK_RETURN_IF_ERROR(GetJob(id).status());
  return store_->ListCandidates(id);
}

absl::StatusOr<v1::Job> Coordinator::CancelJob(const std::string& id) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end() || it->second.visible_version == 0) {
    lock.unlock();
    return store_->GetJob(id);  // already finished: cancelling is a no-op
  }
  JobRuntime& runtime = it->second;
  if (IsTerminal(runtime.job.state())) return VisibleJob(runtime);  // finished, not yet retired
  DropJobTasksLocked(id);
  runtime.job.set_state(v1::CANCELLED);
  runtime.job.set_in_flight(0);
  SaveJobLocked(runtime);
  const uint64_t version = runtime.version;
  v1::Job job = runtime.job;
  PumpLocked();  // hands its slots to others
  // Returns once the cancellation is durable.
  published_.wait(lock, [&] {
    auto it = jobs_.find(id);
    return it == jobs_.end() || it->second.visible_version >= version;
  });
  return job;
}

absl::Status Coordinator::WaitForJobChange(const std::string& id, uint64_t* version,
                                           absl::Duration timeout, v1::JobEvent* event) {
  std::unique_lock<std::mutex> lock(mu_);
  auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
  while (true) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) {
      // Finished (or unknown): the stored job is the final word.
      lock.unlock();
      SHRINK_ASSIGN_OR_RETURN(v1::Job job, store_->GetJob(id));
      *event->mutable_job() = job;
      *version = UINT64_MAX;
      return absl::OkStatus();
    }
    if (WatchCursor(it->second) > *version) {
      *version = WatchCursor(it->second);
      *event->mutable_job() = VisibleJob(it->second);
      // Unset until a candidate finished (a default message would read as candidate 0).
      if (!it->second.visible_last_candidate.outcome().empty()) {
        *event->mutable_last_candidate() = it->second.visible_last_candidate;
      }
      return absl::OkStatus();
    }
    if (shutdown_) return absl::UnavailableError("coordinator is shutting down");
    std::shared_ptr<std::condition_variable> wake = it->second.wake;  // outlives a retired job
    if (wake->wait_until(lock, deadline) == std::cv_status::timeout) {
      return absl::DeadlineExceededError("no change");
    }
  }
}

std::string Coordinator::RegisterWorker(const v1::RegisterWorkerRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string id = RandomId("worker-");
  WorkerState& w = workers_[id];
  w.info = request;
  if (w.info.slots() < 1) w.info.set_slots(1);
  for (const std::string& name : request.runtimes()) {
    if (IsKnownRuntime(name)) w.runtimes.insert(name);
  }
  if (request.runtimes().empty()) w.runtimes.insert(kRuntimeLibTorch);
  SHRINK_LOG(INFO) << "worker " << id << " (" << request.name() << ") registered with "
                   << w.info.slots() << " slots, runtimes " << absl::StrJoin(w.runtimes, ", ");
  return id;
}

absl::Status Coordinator::AttachWorker(const std::string& worker_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) {
    return absl::NotFoundError(absl::StrCat("unknown worker ", worker_id, "; register first"));
  }
  if (it->second.attached) {
    return absl::AlreadyExistsError(absl::StrCat("worker ", worker_id, " already has a task stream"));
  }
  it->second.attached = true;
  UpdateGaugesLocked();
  PumpLocked();
  return absl::OkStatus();
}

Coordinator::Next Coordinator::NextMessageForWorker(const std::string& worker_id,
                                                    absl::Duration timeout,
                                                    v1::CoordinatorMessage* message,
                                                    absl::Time* slot_freed_at) {
  std::unique_lock<std::mutex> lock(mu_);
  auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
  while (true) {
    auto it = workers_.find(worker_id);
    if (shutdown_ || it == workers_.end() || !it->second.attached) return Next::kClosed;
    if (!it->second.outbox.empty()) {
      *message = std::move(it->second.outbox.front());
      it->second.outbox.pop_front();
      absl::Time freed = absl::InfinitePast();
      if (!it->second.outbox_freed_at.empty()) {
        freed = it->second.outbox_freed_at.front();
        it->second.outbox_freed_at.pop_front();
      }
      if (slot_freed_at) *slot_freed_at = freed;
      return Next::kMessage;
    }
    std::shared_ptr<std::condition_variable> wake = it->second.wake;  // outlives a detached worker
    if (wake->wait_until(lock, deadline) == std::cv_status::timeout) return Next::kTimeout;
  }
}

void Coordinator::DetachWorker(const std::string& worker_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return;
  std::set<std::string> running = std::move(it->second.running);
  it->second.wake->notify_all();
  workers_.erase(it);
  SHRINK_LOG(INFO) << "worker " << worker_id << " left; " << running.size() << " task(s) requeued";
  for (const auto& task_id : running) RequeueOrFailLocked(task_id, "worker disconnected");
  UpdateGaugesLocked();
  PumpLocked();
  changed_.notify_all();
}

void Coordinator::HandleResult(const std::string& worker_id, const v1::TaskResult& result) {
  const absl::Time arrived = absl::Now();
  std::lock_guard<std::mutex> lock(mu_);
  auto w = workers_.find(worker_id);
  // Any answer shows the worker is alive: it takes work again, even if this answer is late.
  if (w != workers_.end()) w->second.unresponsive = false;
  auto task_it = tasks_.find(result.task_id());
  const bool late_but_unclaimed = task_it != tasks_.end() && task_it->second.worker_id.empty();
  if (task_it == tasks_.end() || (task_it->second.worker_id != worker_id && !late_but_unclaimed)) {
    // Finished, recalled, or re-dispatched to another worker (whose answer counts).
    PumpLocked();
    return;
  }
  if (late_but_unclaimed) {
    // Its lease expired and it went back to the queue, but nobody has taken it yet: a slow
    // worker's result is as good as a fresh one, and re-running it would cost the same again.
    SHRINK_LOG(INFO) << "late result of " << result.task_id() << " from " << worker_id << " taken";
    queue_.erase(std::remove(queue_.begin(), queue_.end(), result.task_id()), queue_.end());
  }
  PendingTask task = std::move(task_it->second);
  tasks_.erase(task_it);
  if (w != workers_.end()) {
    w->second.running.erase(task.task.task_id());
    w->second.freed_at.push_back(arrived);
  }
  double seconds = absl::ToDoubleSeconds(absl::Now() - task.dispatched_at);
  if (metrics_) {
    metrics_->CandidateCompleted(result.ok() ? "ok" : "failed");
    metrics_->ObserveEvaluationSeconds(seconds);
  }
  auto job_it = jobs_.find(task.task.job_id());
  if (job_it != jobs_.end()) {
    JobRuntime& runtime = job_it->second;
    runtime.job.set_in_flight(std::max(0, runtime.job.in_flight() - 1));
    switch (task.task.kind()) {
      case v1::Task::DESCRIBE:
        if (result.ok()) {
          OnDescribedLocked(runtime, result);
        } else if (task.attempts < options_.max_attempts) {
          RetryLocked(runtime, std::move(task), worker_id);
        } else {
          FailJobLocked(runtime, absl::StrCat("describing the model failed: ", result.error()));
        }
        break;
      case v1::Task::EVALUATE:
        if (!result.ok() && task.attempts < options_.max_attempts) {
          // A pass that failed may succeed elsewhere (memory, a flaky device): retry, bounded.
          SHRINK_LOG(WARNING) << "candidate " << task.candidate_id << " of " << runtime.job.id()
                              << " failed on attempt " << task.attempts << ": " << result.error();
          RetryLocked(runtime, std::move(task), worker_id);
        } else {
          OnEvaluatedLocked(runtime, task, result, worker_id);
        }
        break;
      case v1::Task::FINALIZE:
        if (result.ok()) {
          OnFinalizedLocked(runtime, result);
        } else if (task.attempts < options_.max_attempts) {
          SHRINK_LOG(WARNING) << "finalizing " << runtime.job.id() << " failed on attempt " << task.attempts << ": "
                              << result.error();
          RetryLocked(runtime, std::move(task), worker_id);
        } else {
          FailJobLocked(runtime, absl::StrCat("finalizing the best policy failed: ", result.error()));
        }
        break;
      default:
        break;
    }
  }
  UpdateGaugesLocked();
  PumpLocked();
}

void Coordinator::RetryLocked(JobRuntime& runtime, PendingTask task, const std::string& failed_worker) {
  task.failed_on.insert(failed_worker);
  task.worker_id.clear();
  std::string id = task.task.task_id();
  tasks_[id] = std::move(task);
  queue_.push_back(id);
  runtime.job.set_in_flight(runtime.job.in_flight() + 1);
}

void Coordinator::OnDescribedLocked(JobRuntime& runtime, const v1::TaskResult& result) {
  *runtime.job.mutable_description() = result.description();
  auto search = MakeSearchLocked(runtime.job);
  if (!search.ok()) {
    FailJobLocked(runtime, std::string(search.status().message()));
    return;
  }
  runtime.search = std::move(*search);
  runtime.job.set_state(v1::SEARCHING);
  SaveJobLocked(runtime);
}

void Coordinator::OnEvaluatedLocked(JobRuntime& runtime, const PendingTask& task,
                                    const v1::TaskResult& result, const std::string& worker_id) {
  v1::CandidateSummary c;
  std::string checkpoint;  // the search's state after this observation, if it keeps one
  c.set_id(task.candidate_id);
  *c.mutable_policy() = task.task.policy();
  c.set_worker(worker_id);
  c.set_seconds(result.seconds());
  if (result.ok()) {
    c.set_outcome("ok");
    *c.mutable_evaluation() = result.evaluation();
    c.set_reward(agent::ComputeReward(runtime.job.spec().reward(), runtime.job.spec().goal(),
                                      result.evaluation()));
    c.set_feasible(agent::MeetsGoal(runtime.job.spec().goal(), result.evaluation()));
    if (runtime.search) {
      runtime.search->Observe(c.policy(), c.evaluation(), c.reward());
      auto state = runtime.search->SaveState();
      if (!state.ok()) {
        SHRINK_LOG(ERROR) << "cannot checkpoint the search of " << runtime.job.id() << ": "
                          << state.status().message();
      } else if (!state->empty()) {
        checkpoint = *std::move(state);
      }
    }
  } else {
    c.set_outcome("failed");
    c.set_error(result.error());
    runtime.job.set_failed(runtime.job.failed() + 1);
  }
  runtime.job.set_evaluated(runtime.job.evaluated() + 1);
  if (!runtime.job.has_best() || IsBetter(c, runtime.job.best())) *runtime.job.mutable_best() = c;
  runtime.last_candidate = c;
  runtime.job.set_updated_unix_ms(NowMs());
  // Durable when its batch commits: before then no client sees it, and a crash
  // forgets it together with every later write (see CommitQueue).
  PersistLocked(runtime, &c, checkpoint.empty() ? nullptr : &checkpoint);
  if (metrics_) {
    metrics_->SetJobProgress(runtime.job.id(), runtime.job.evaluated(), runtime.job.spec().budget());
    if (c.outcome() == "ok") {
      metrics_->SetLastCandidate(runtime.job.id(), c.evaluation().size_ratio(), c.evaluation().retention());
    }
    if (runtime.job.best().outcome() == "ok") {
      const v1::CandidateSummary& best = runtime.job.best();
      metrics_->SetJobBest(runtime.job.id(), best.reward(), best.evaluation().size_ratio(),
                           best.evaluation().retention());
    }
  }
}

void Coordinator::OnFinalizedLocked(JobRuntime& runtime, const v1::TaskResult& result) {
  for (const auto& file : result.artifact_files()) {
    if (!blobs_->Has(file.sha256())) {
      FailJobLocked(runtime, absl::StrCat("artifact file ", file.name(), " never reached the blob store"));
      return;
    }
  }
  *runtime.job.mutable_final_evaluation() = result.evaluation();
  runtime.job.clear_artifact_files();
  for (const auto& file : result.artifact_files()) {
    if (file.name() != kManifestName) *runtime.job.add_artifact_files() = file;
  }
  // The job stays FINALIZING, with nothing in flight and no finalize queued again, until
  // FinishLoop has written its manifest; a crash meanwhile finalizes it again on restart.
  runtime.writing_manifest = true;
  finalized_.push_back({runtime.job, runtime.last_write_seq});
  finalized_added_.notify_one();
}

void Coordinator::FinishLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    finalized_added_.wait(lock, [&] { return shutdown_ || !finalized_.empty(); });
    if (finalized_.empty()) return;  // shut down, nothing left to finish
    Finalized next = std::move(finalized_.front());
    finalized_.pop_front();
    lock.unlock();
    commits_->WaitCommitted(next.candidates_durable_at);  // the manifest lists them all
    absl::StatusOr<v1::FileRef> manifest = WriteManifest(next.job);
    lock.lock();
    auto it = jobs_.find(next.job.id());
    // Cancelled (or failed) meanwhile: its final state stands.
    if (it == jobs_.end() || IsTerminal(it->second.job.state()) || !it->second.writing_manifest) continue;
    JobRuntime& runtime = it->second;
    runtime.writing_manifest = false;
    if (!manifest.ok()) {
      FailJobLocked(runtime, absl::StrCat("writing manifest.json: ", manifest.status().message()));
    } else {
      const v1::Evaluation& final_evaluation = runtime.job.final_evaluation();
      *runtime.job.add_artifact_files() = *manifest;
      runtime.job.set_goal_met(agent::MeetsGoal(runtime.job.spec().goal(), final_evaluation));
      runtime.job.set_state(v1::SUCCEEDED);
      SHRINK_LOG(INFO) << "job " << runtime.job.id() << " succeeded: size " << final_evaluation.size_ratio()
                       << ", retention " << final_evaluation.retention() << ", speedup "
                       << final_evaluation.speedup();
      SaveJobLocked(runtime);
    }
    UpdateGaugesLocked();
  }
}

absl::StatusOr<v1::FileRef> Coordinator::WriteManifest(const v1::Job& job) {
  std::string config;
  for (const auto& file : job.artifact_files()) {
    if (file.name() != "config.json") continue;
    auto text = ReadFile(blobs_->PathOf(file.sha256()));
    if (text.ok()) config = *std::move(text);
  }
  SHRINK_ASSIGN_OR_RETURN(auto candidates, store_->ListCandidates(job.id()));
  std::string manifest = BuildManifest(job, job.final_evaluation(), candidates, config);
  std::string path = absl::StrCat(options_.state_dir, "/", job.id(), "-manifest.json");
  SHRINK_RETURN_IF_ERROR(WriteFileAtomic(path, manifest));
  auto sha = blobs_->PutFile(path);
  RemoveAll(path);
  if (!sha.ok()) return sha.status();
  v1::FileRef ref;
  ref.set_name(kManifestName);
  ref.set_sha256(*sha);
  ref.set_size(static_cast<int64_t>(manifest.size()));
  return ref;
}

void Coordinator::FailJobLocked(JobRuntime& runtime, const std::string& error) {
  SHRINK_LOG(WARNING) << "job " << runtime.job.id() << " failed: " << error;
  DropJobTasksLocked(runtime.job.id());
  runtime.job.set_state(v1::FAILED);
  runtime.job.set_error(error);
  runtime.job.set_in_flight(0);
  SaveJobLocked(runtime);
}

void Coordinator::SaveJobLocked(JobRuntime& runtime) {
  runtime.job.set_updated_unix_ms(NowMs());
  PersistLocked(runtime, nullptr, nullptr);
}

uint64_t Coordinator::PersistLocked(JobRuntime& runtime, const v1::CandidateSummary* candidate,
                                    const std::string* search_state) {
  ++runtime.version;
  JobWrite write;
  write.job = runtime.job;
  if (candidate != nullptr) write.candidate = *candidate;
  if (search_state != nullptr) write.search_state = *search_state;
  runtime.last_write_seq = commits_->Enqueue(std::move(write), runtime.version, runtime.last_candidate);
  return runtime.last_write_seq;
}

v1::Job Coordinator::VisibleJob(const JobRuntime& runtime) {
  v1::Job job = runtime.visible_job;
  job.set_in_flight(runtime.job.in_flight());  // a live count, never stored (reset on recovery)
  job.set_waiting(runtime.waiting);              // live too
  return job;
}

void Coordinator::PublishLocked(std::vector<CommitQueue::Entry>& batch, const std::vector<absl::Status>& statuses,
                                bool retire) {
  for (size_t i = 0; i < batch.size(); ++i) {
    CommitQueue::Entry& entry = batch[i];
    const std::string& id = entry.write.job.id();
    auto it = jobs_.find(id);
    if (!statuses[i].ok()) {
      if (it != jobs_.end() && it->second.visible_version == 0) {
        it->second.create_error = statuses[i];  // SubmitJob reports it and drops the job
        continue;
      }
      // As before group commit: the job goes on in memory; a restart resumes it
      // from its last durable write.
      SHRINK_LOG(ERROR) << "cannot record job " << id
                        << (entry.write.candidate ? absl::StrCat(" (candidate ", entry.write.candidate->id(), ")") : "")
                        << ": " << statuses[i].message();
    }
    if (it == jobs_.end() || entry.version <= it->second.visible_version) continue;
    JobRuntime& runtime = it->second;
    runtime.visible_job = std::move(entry.write.job);
    runtime.visible_last_candidate = std::move(entry.last_candidate);
    runtime.visible_version = entry.version;
    runtime.wake->notify_all();
  }
  published_.notify_all();
  if (retire) {
    RetireFinishedLocked();
    UpdateGaugesLocked();
  }
}

void Coordinator::RetireFinishedLocked() {
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    JobRuntime& runtime = it->second;
    // Only once its final state is durable: from then on the store answers for it.
    if (IsTerminal(runtime.job.state()) && runtime.visible_version == runtime.version) {
      if (metrics_) metrics_->ClearJob(it->first);
      finished_by_state_[JobStateName(runtime.job.state())]++;
      runtime.wake->notify_all();
      it = jobs_.erase(it);
    } else {
      ++it;
    }
  }
}

absl::StatusOr<std::unique_ptr<agent::Search>> Coordinator::MakeSearchLocked(const v1::Job& job) {
  agent::SearchContext context;
  context.model = job.description();
  context.goal = job.spec().goal();
  context.budget = job.spec().budget();
  context.seed = job.spec().seed();
  if (!job.spec().init_agent().empty()) {
    auto state = store_->GetSearchState(job.spec().init_agent());
    if (!state.ok() || state->empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "spec.init_agent: job ", job.spec().init_agent(), " has no agent checkpoint"));
    }
    context.init_state = *std::move(state);
  }
  return agent::MakeSearch(job.spec().search(), context);
}

void Coordinator::UpdateGaugesLocked() {
  if (!metrics_) return;
  std::map<std::string, int> by_state = finished_by_state_;
  for (const auto& [id, runtime] : jobs_) by_state[JobStateName(runtime.job.state())]++;
  metrics_->SetJobsByState(by_state);
  metrics_->SetQueueDepth(static_cast<int>(queue_.size()));
  int connected = 0, slots = 0, busy = 0;
  std::map<std::string, int> workers_by_runtime, waiting_by_runtime;
  for (const auto& [id, w] : workers_) {
    if (!w.attached) continue;
    connected++;
    slots += w.info.slots();
    busy += static_cast<int>(w.running.size());
    for (const std::string& name : w.runtimes) workers_by_runtime[name]++;
  }
  metrics_->SetWorkers(connected, slots, busy);
  for (const auto& [id, runtime] : jobs_) {
    if (!runtime.waiting.empty()) waiting_by_runtime[RuntimeOrDefault(runtime.job.spec().runtime())]++;
  }
  metrics_->SetRuntimes(workers_by_runtime, waiting_by_runtime);
}

}  // namespace shrink::server
