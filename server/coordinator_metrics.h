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

  // shrink_queue_depth: tasks waiting for a worker slot.
  void SetQueueDepth(int depth);

  // shrink_workers_connected, shrink_worker_slots, shrink_worker_slots_busy.
  void SetWorkers(int connected, int slots, int busy);

  // shrink_job_best_reward{job}: the best reward so far of a running job.
  void SetBestReward(const std::string& job_id, double reward);

  // Removes the job's shrink_job_best_reward series (when the job ends).
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
  prometheus::Gauge* queue_depth_;
  prometheus::Gauge* workers_connected_;
  prometheus::Gauge* worker_slots_;
  prometheus::Gauge* worker_slots_busy_;
  prometheus::Family<prometheus::Gauge>* best_reward_family_;
  prometheus::Counter* blob_bytes_received_;
  prometheus::Counter* blob_bytes_sent_;

  std::mutex best_reward_mutex_;
  std::map<std::string, prometheus::Gauge*> best_reward_by_job_;  // guarded by best_reward_mutex_
};

}  // namespace shrink::server
