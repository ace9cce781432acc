// The coordinator's Prometheus metrics: every family is built up front so that
// each series exists (at 0) from the first scrape and dashboards never see gaps.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace shrink::server {

// Owns the coordinator's registry and its families (names are the interface the
// dashboards and alert rules rely on; see each setter).
//
// Thread-safety: every method may be called from any thread; prometheus-cpp's
// metrics are atomic, and the per-job gauge children are guarded by a mutex.
class CoordinatorMetrics {
 public:
  // The label values created up front; others are counted under "other".
  static constexpr std::array<const char*, 6> kJobStates = {
      "queued", "searching", "finalizing", "succeeded", "failed", "cancelled"};
  static constexpr std::array<const char*, 3> kTaskKinds = {"describe", "evaluate", "finalize"};
  static constexpr std::array<const char*, 3> kOutcomes = {"ok", "failed", "lease_expired"};
  static constexpr std::array<const char*, 2> kRuntimes = {"libtorch", "onnxruntime"};  // common/runtimes.h

  CoordinatorMetrics();
  ~CoordinatorMetrics();
  CoordinatorMetrics(const CoordinatorMetrics&) = delete;
  CoordinatorMetrics& operator=(const CoordinatorMetrics&) = delete;

  // shrink_jobs{state}: sets every state's count; states absent from the map are 0.
  // Keys are matched case-insensitively ("QUEUED" works as "queued").
  void SetJobsByState(const std::map<std::string, int>& counts);

  // shrink_jobs_submitted_total += 1.
  void JobSubmitted();

  // shrink_candidates_dispatched_total{kind} += 1 (describe|evaluate|finalize).
  void CandidateDispatched(const std::string& kind);

  // shrink_candidates_completed_total{outcome} += 1 (ok|failed|lease_expired).
  void CandidateCompleted(const std::string& outcome);

  // shrink_candidate_evaluation_seconds observes one evaluation's wall time.
  void ObserveEvaluationSeconds(double seconds);

  // shrink_dispatch_latency_seconds observes the time from a result freeing
  // a worker slot to the next task for that slot being written to the worker.
  void ObserveDispatchLatency(double seconds);

  // shrink_worker_heartbeats_total += 1 (one heartbeat message from a worker).
  void HeartbeatReceived();

  // shrink_queue_depth: tasks waiting for a worker slot.
  void SetQueueDepth(int depth);

  // shrink_workers_connected, shrink_worker_slots, shrink_worker_slots_busy.
  void SetWorkers(int connected, int slots, int busy);

  // shrink_workers_by_runtime{runtime}: connected workers that have each runtime; and
  // shrink_jobs_waiting_for_runtime{runtime}: unfinished jobs of each runtime that no
  // connected worker can serve. Runtimes absent from a map are 0.
  void SetRuntimes(const std::map<std::string, int>& workers, const std::map<std::string, int>& waiting_jobs);

  // shrink_job_best_reward{job_id}: the best reward so far of a running job.
  void SetBestReward(const std::string& job_id, double reward);

  // shrink_job_best_{reward,size_ratio,retention}{job_id}: the best candidate so far
  // (validation split), for the job dashboard's "best over time" panels.
  void SetJobBest(const std::string& job_id, double reward, double size_ratio, double retention);

  // shrink_job_candidate_{size_ratio,retention}{job_id}: the latest evaluated
  // candidate, sampled by each scrape (the dashboard's size-vs-retention scatter).
  void SetLastCandidate(const std::string& job_id, double size_ratio, double retention);

  // shrink_job_evaluated{job_id} and shrink_job_budget{job_id}: progress of a running job.
  void SetJobProgress(const std::string& job_id, int evaluated, int budget);

  // Removes every per-job series of the job (when the job ends).
  void ClearJob(const std::string& job_id);

  // shrink_blob_bytes_received_total += n (uploads from clients and workers).
  void BlobBytesReceived(int64_t n);

  // shrink_blob_bytes_sent_total += n (downloads by workers and clients).
  void BlobBytesSent(int64_t n);

  // The registry to serve on /metrics.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;

  prometheus::Family<prometheus::Gauge>* jobs_family_;
  std::array<prometheus::Gauge*, kJobStates.size()> jobs_by_state_;
  prometheus::Counter* jobs_submitted_;
  prometheus::Family<prometheus::Counter>* dispatched_family_;
  std::array<prometheus::Counter*, kTaskKinds.size()> dispatched_by_kind_;
  prometheus::Family<prometheus::Counter>* completed_family_;
  std::array<prometheus::Counter*, kOutcomes.size()> completed_by_outcome_;
  prometheus::Histogram* evaluation_seconds_;
  prometheus::Histogram* dispatch_latency_;
  prometheus::Counter* heartbeats_;
  prometheus::Gauge* queue_depth_;
  prometheus::Gauge* workers_connected_;
  prometheus::Gauge* worker_slots_;
  prometheus::Gauge* worker_slots_busy_;
  std::array<prometheus::Gauge*, kRuntimes.size()> workers_by_runtime_;
  std::array<prometheus::Gauge*, kRuntimes.size()> jobs_waiting_by_runtime_;
  prometheus::Counter* blob_bytes_received_;
  prometheus::Counter* blob_bytes_sent_;

  // The per-job families, in the order of JobSeries's gauges.
  static constexpr size_t kJobGauges = 7;
  std::array<prometheus::Family<prometheus::Gauge>*, kJobGauges> job_families_;
  using JobSeries = std::array<prometheus::Gauge*, kJobGauges>;
  // The job's gauges, created on first use. Caller holds job_mutex_.
  JobSeries& JobSeriesLocked(const std::string& job_id);

  std::mutex job_mutex_;
  std::map<std::string, JobSeries> job_series_;  // guarded by job_mutex_
};

}  // namespace shrink::server
