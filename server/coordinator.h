// The coordinator's core, independent of gRPC: jobs, the candidate queue,
// leases, workers and their outboxes. The gRPC services are thin layers on it.
// One class, one mutex; its methods are defined in coordinator.cc (lifecycle),
// scheduler.cc, leases.cc and recovery.cc. Spec checks: job_spec_validation.h.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/search.h"
#include "server/storage/blob_store.h"
#include "server/storage/commit_queue.h"
#include "server/coordinator_metrics.h"
#include "server/storage/job_store.h"
#include "shrink/v1/coordinator.pb.h"
#include "shrink/v1/worker_pool.pb.h"

namespace shrink::server {

struct CoordinatorOptions {
  std::string state_dir;                      // SQLite database and blobs live here
  // A dispatched task with no result and no heartbeat for this long goes back to
  // the queue; workers must heartbeat well within it (shrink-worker: every 10 s).
  absl::Duration lease = absl::Seconds(60);
  // Heartbeats never extend a task beyond this after its dispatch, so a task
  // stuck inside a live worker is still re-queued. At least `lease`.
  absl::Duration max_task = absl::Hours(6);
  absl::Duration lease_check = absl::Seconds(1);  // how often leases are checked
  int max_attempts = 3;                       // dispatches per task before it counts as failed
  int64_t max_blob_bytes = int64_t{4} << 30;  // largest model or data file accepted
  int max_active_jobs_per_tenant = 100;       // unfinished jobs one tenant may have; 0 = no limit
  bool fsync_each_commit = true;              // see JobStore::SetFsyncEachCommit
};

// Thread-safe: every public method may be called from any gRPC thread.
// One mutex guards all state; no method blocks on I/O to a worker while
// holding it (messages for workers go to per-worker outboxes), and results are
// made durable by a group-commit writer (CommitQueue) outside it. Clients see a
// job's state (GetJob, ListJobs, WaitForJobChange) only once it is durable.
class Coordinator {
 public:
  // Opens the state folder and resumes every unfinished job found there.
  static absl::StatusOr<std::unique_ptr<Coordinator>> Create(const CoordinatorOptions& options,
                                                             CoordinatorMetrics* metrics);
  // Shuts down, then commits and publishes every write still queued.
  ~Coordinator();

  // --- client API ---
  // Validates the spec field by field and creates a job owned by `tenant`; a
  // repeated client_request_id (of the same tenant) returns the job created
  // the first time. ResourceExhausted beyond max_active_jobs_per_tenant.
  absl::StatusOr<v1::Job> SubmitJob(const v1::JobSpec& spec, const std::string& tenant = "default");
  // The job as of its last durable write; NotFound for an unknown id.
  absl::StatusOr<v1::Job> GetJob(const std::string& id);
  // Every job, oldest first, each as of its last durable write.
  absl::StatusOr<std::vector<v1::Job>> ListJobs();
  // The job's recorded candidates by id; NotFound for an unknown job.
  absl::StatusOr<std::vector<v1::CandidateSummary>> ListCandidates(const std::string& id);
  // Stops dispatching, recalls in-flight tasks, and leaves the job CANCELLED.
  absl::StatusOr<v1::Job> CancelJob(const std::string& id);
  // Waits until the job changed after `*version` (or `timeout` passed) and
  // fills `event`; updates `*version`. NotFound for an unknown job.
  absl::Status WaitForJobChange(const std::string& id, uint64_t* version, absl::Duration timeout,
                                v1::JobEvent* event);
  // The uploaded models, data and artifacts (the services stream them in and out).
  BlobStore* blobs() { return blobs_.get(); }
  // The /metrics families it was created with (may be null: every use checks).
  CoordinatorMetrics* metrics() { return metrics_; }

  // --- worker API ---
  // Admits a worker; it receives tasks once its stream attaches.
  std::string RegisterWorker(const v1::RegisterWorkerRequest& request);
  // The worker's task stream opened; NotFound for an unknown worker id.
  absl::Status AttachWorker(const std::string& worker_id);
  // What NextMessageForWorker came back with.
  enum class Next { kMessage, kTimeout, kClosed };
  // Blocks until a message for the worker is ready (kMessage), `timeout`
  // passes (kTimeout), or the worker is detached or the coordinator shuts
  // down (kClosed).
  // `slot_freed_at`, if given, is when the result that freed the slot this
  // task fills arrived (InfinitePast when none did), for the dispatch latency.
  Next NextMessageForWorker(const std::string& worker_id, absl::Duration timeout,
                            v1::CoordinatorMessage* message, absl::Time* slot_freed_at = nullptr);
  // The stream closed: the worker's tasks go back to the queue.
  void DetachWorker(const std::string& worker_id);
  // A task finished on a worker.
  void HandleResult(const std::string& worker_id, const v1::TaskResult& result);
  // The worker is alive and still running these tasks: each one dispatched to
  // it gets its lease renewed (capped by max_task); other ids are ignored.
  // Defined in server/leases.cc.
  void HandleHeartbeat(const std::string& worker_id, const v1::Heartbeat& heartbeat);

  // Stops the lease thread and wakes every waiter.
  void Shutdown();

 private:
  struct PendingTask {
    v1::Task task;
    int64_t candidate_id = -1;   // EVALUATE only
    int attempts = 0;            // dispatches so far
    std::string worker_id;       // empty while queued
    std::set<std::string> failed_on;  // workers whose attempt failed: a retry prefers another
    absl::Time deadline;         // lease end while dispatched (heartbeats move it)
    absl::Time dispatched_at;
  };
  struct JobRuntime {
    v1::Job job;
    std::unique_ptr<agent::Search> search;  // set once the model is described
    int64_t next_candidate_id = 0;          // = proposals made so far
    v1::CandidateSummary last_candidate;
    uint64_t version = 1;                   // bumped by every write (PersistLocked)
    uint64_t last_write_seq = 0;            // the commit queue's number of its latest write
    bool writing_manifest = false;          // finalized; the finisher thread writes its manifest
    // Live, not stored: why the job makes no progress now (Job.waiting), and how often that
    // changed, which wakes watchers as a write does (WatchCursor).
    std::string waiting;
    uint64_t waiting_changes = 0;
    // What clients see: the job as of its last durable write.
    v1::Job visible_job;
    v1::CandidateSummary visible_last_candidate;
    uint64_t visible_version = 0;           // 0: not durable yet (being submitted)
    absl::Status create_error;              // the first write failed (SubmitJob returns it)
    // Woken on every change of this job: watchers of other jobs sleep on.
    std::shared_ptr<std::condition_variable> wake = std::make_shared<std::condition_variable>();
  };
  struct WorkerState {
    v1::RegisterWorkerRequest info;
    std::set<std::string> runtimes;  // the known runtimes it advertised (libtorch when none)
    bool attached = false;
    std::set<std::string> running;  // task ids
    std::deque<v1::CoordinatorMessage> outbox;
    std::deque<absl::Time> outbox_freed_at;  // per outbox message: when its slot was freed
    std::deque<absl::Time> freed_at;         // results that freed a slot not refilled yet
    bool unresponsive = false;  // a lease expired on it: no new tasks until it answers (result or heartbeat)
    // Woken when its outbox fills or it goes away: other workers' streams sleep on.
    std::shared_ptr<std::condition_variable> wake = std::make_shared<std::condition_variable>();
  };

  Coordinator(const CoordinatorOptions& options, CoordinatorMetrics* metrics);

  // All *Locked methods need mu_ held.

  // --- recovery (server/recovery.cc) ---
  // Called once by Create (takes mu_): resumes every unfinished job in the store, its search
  // restored from its checkpoint or by replaying its recorded candidates.
  absl::Status Recover();

  // --- scheduling (server/scheduler.cc) ---
  // Fills every job's share of the queue, retires finished jobs and dispatches:
  // called after anything that frees a slot or adds work.
  void PumpLocked();
  // Queues the job's next tasks; `total_slots` = the slots of the usable workers that
  // have the job's runtime (K).
  void FillJobLocked(JobRuntime& runtime, int total_slots);
  // Sets the job's live waiting reason from the usable workers' slots per runtime;
  // watchers are woken when it changes.
  void UpdateWaitingLocked(JobRuntime& runtime, const std::map<std::string, int>& slots_by_runtime);
  // Queues one task of the job and counts it in the job's in_flight.
  void EnqueueTaskLocked(JobRuntime& runtime, v1::Task::Kind kind, const v1::Policy& policy,
                         int64_t candidate_id);
  // Hands queued tasks, oldest first, each to the attached worker with the most free slots
  // among those that have its job's runtime; a task no free worker can run waits.
  void DispatchLocked();
  // Forgets the job's tasks: queued ones leave the queue, dispatched ones are recalled.
  void DropJobTasksLocked(const std::string& job_id);
  // The slots of the attached workers that answer, per runtime they have.
  std::map<std::string, int> SlotsByRuntimeLocked() const;

  // --- leases (server/leases.cc) ---
  // The lease thread: every lease_check, recalls the tasks whose lease ended and
  // marks their workers unresponsive, then re-queues or fails the tasks.
  void LeaseLoop();
  // The lease end of a task dispatched at `dispatched_at`, renewed at `now`.
  absl::Time LeaseEnd(absl::Time dispatched_at, absl::Time now) const;
  // A task lost its worker (lease ended, worker left): back to the front of the
  // queue, or, after max_attempts dispatches, a failed result (`reason` says why).
  void RequeueOrFailLocked(const std::string& task_id, const std::string& reason);

  // --- job lifecycle (coordinator.cc) ---
  // A task whose attempt failed on `failed_worker` goes back to the end of the queue, to be
  // dispatched again (preferably elsewhere, see DispatchLocked).
  void RetryLocked(JobRuntime& runtime, PendingTask task, const std::string& failed_worker);
  // Drops the job's tasks and leaves it FAILED with `error`.
  void FailJobLocked(JobRuntime& runtime, const std::string& error);
  // The model is described: the job's search starts (SEARCHING).
  void OnDescribedLocked(JobRuntime& runtime, const v1::TaskResult& result);
  // Records a candidate's result (or failure): the search observes it, the best is
  // kept, and the candidate is written with the search's checkpoint.
  void OnEvaluatedLocked(JobRuntime& runtime, const PendingTask& task, const v1::TaskResult& result,
                         const std::string& worker_id);
  // The best policy is finalized: its artifact goes to FinishLoop for the manifest.
  void OnFinalizedLocked(JobRuntime& runtime, const v1::TaskResult& result);
  // Writes the finalized jobs' manifests, outside mu_: reading every candidate back and
  // writing a file take milliseconds that would otherwise stall every dispatch.
  void FinishLoop();
  // Writes `job`'s manifest.json (see server/manifest.h) into the blob store; no lock needed.
  absl::StatusOr<v1::FileRef> WriteManifest(const v1::Job& job);
  // Stamps the job's update time and persists it (PersistLocked).
  void SaveJobLocked(JobRuntime& runtime);
  // Bumps the job's version and queues its durable write (with a candidate and
  // the search checkpoint when given); returns the write's sequence number.
  uint64_t PersistLocked(JobRuntime& runtime, const v1::CandidateSummary* candidate,
                         const std::string* search_state);
  // A committed batch: makes each job's written version visible and wakes its
  // watchers; with `retire`, finished jobs whose last write is durable leave memory.
  void PublishLocked(std::vector<CommitQueue::Entry>& batch, const std::vector<absl::Status>& statuses,
                     bool retire);
  // Jobs whose final state is durable leave memory; the store answers for them.
  void RetireFinishedLocked();
  // The durable job clients see, with the live in_flight count and waiting reason.
  static v1::Job VisibleJob(const JobRuntime& runtime);
  // Grows with every durable write and every change of the waiting reason: what
  // WaitForJobChange compares against the watcher's last position.
  static uint64_t WatchCursor(const JobRuntime& runtime) {
    return runtime.visible_version == 0 ? 0 : runtime.visible_version + runtime.waiting_changes;
  }
  // Sets the jobs, queue and workers gauges from the current state.
  void UpdateGaugesLocked();
  // A new search for the described job (from init_agent's checkpoint when named).
  absl::StatusOr<std::unique_ptr<agent::Search>> MakeSearchLocked(const v1::Job& job);

  const CoordinatorOptions options_;
  CoordinatorMetrics* const metrics_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<CommitQueue> commits_;  // drained and stopped first in ~Coordinator
  std::unique_ptr<BlobStore> blobs_;

  std::mutex mu_;
  std::condition_variable changed_;
  std::condition_variable published_;  // a committed batch was published  // shutdown and workers leaving (per-job and per-worker cvs do the rest)
  bool shutdown_ = false;
  std::map<std::string, JobRuntime> jobs_;
  std::map<std::string, PendingTask> tasks_;
  std::deque<std::string> queue_;  // task ids waiting for a worker, FIFO
  std::map<std::string, WorkerState> workers_;
  std::map<std::string, int> finished_by_state_;  // retired jobs, for the jobs gauge
  uint64_t next_task_number_ = 0;
  // A finalized job, as it was then, and the write after which all its candidates are durable.
  struct Finalized {
    v1::Job job;
    uint64_t candidates_durable_at = 0;
  };
  std::deque<Finalized> finalized_;   // waiting for FinishLoop
  std::condition_variable finalized_added_;
  std::thread lease_thread_;
  std::thread finish_thread_;
};

// True for SUCCEEDED, FAILED and CANCELLED.
bool IsTerminal(v1::JobState state);

}  // namespace shrink::server
