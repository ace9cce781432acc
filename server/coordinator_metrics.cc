#include "server/coordinator_metrics.h"

#include <utility>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/strings/ascii.h"

namespace shrink::server {
namespace {

// Label value for anything outside the known set: keeps cardinality bounded even
// if a caller passes a free-form string.
constexpr char kOther[] = "other";

// From a 50 ms describe on a tiny CNN to a 10-minute BERT evaluation.
const prometheus::Histogram::BucketBoundaries& EvaluationBuckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 600};
  return buckets;
}

// From 50 us (an idle coordinator) to 1 s (a badly overloaded one).
const prometheus::Histogram::BucketBoundaries& DispatchBuckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
  return buckets;
}

// The child for `value` among the pre-built ones, or the family's "other" child.
template <typename Metric, size_t N>
Metric& ChildFor(const std::array<const char*, N>& known, const std::array<Metric*, N>& children,
                 prometheus::Family<Metric>& family, const std::string& label,
                 const std::string& value) {
  for (size_t i = 0; i < N; ++i) {
    if (value == known[i]) return *children[i];
  }
  return family.Add({{label, kOther}});
}

}  // namespace

CoordinatorMetrics::CoordinatorMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  jobs_family_ = &prometheus::BuildGauge()
                      .Name("shrink_jobs")
                      .Help("Jobs in the store by state.")
                      .Register(*registry_);
  for (size_t i = 0; i < kJobStates.size(); ++i) {
    jobs_by_state_[i] = &jobs_family_->Add({{"state", kJobStates[i]}});
  }
  jobs_submitted_ = &prometheus::BuildCounter()
                         .Name("shrink_jobs_submitted_total")
                         .Help("Jobs accepted by Submit (a retried request id counts once).")
                         .Register(*registry_)
                         .Add({});
  dispatched_family_ = &prometheus::BuildCounter()
                            .Name("shrink_candidates_dispatched_total")
                            .Help("Tasks sent to workers, by kind.")
                            .Register(*registry_);
  for (size_t i = 0; i < kTaskKinds.size(); ++i) {
    dispatched_by_kind_[i] = &dispatched_family_->Add({{"kind", kTaskKinds[i]}});
  }
  completed_family_ = &prometheus::BuildCounter()
                           .Name("shrink_candidates_completed_total")
                           .Help("Tasks that ended, by outcome.")
                           .Register(*registry_);
  for (size_t i = 0; i < kOutcomes.size(); ++i) {
    completed_by_outcome_[i] = &completed_family_->Add({{"outcome", kOutcomes[i]}});
  }
  evaluation_seconds_ = &prometheus::BuildHistogram()
                             .Name("shrink_candidate_evaluation_seconds")
                             .Help("Wall time of one candidate evaluation on a worker.")
                             .Register(*registry_)
                             .Add({}, EvaluationBuckets());
  dispatch_latency_ = &prometheus::BuildHistogram()
                           .Name("shrink_dispatch_latency_seconds")
                           .Help("From a result arriving to the next task being written to that worker's slot.")
                           .Register(*registry_)
                           .Add({}, DispatchBuckets());
  heartbeats_ = &prometheus::BuildCounter()
                     .Name("shrink_worker_heartbeats_total")
                     .Help("Heartbeats received from workers (each renews the leases of the tasks it lists).")
                     .Register(*registry_)
                     .Add({});
  queue_depth_ = &prometheus::BuildGauge()
                      .Name("shrink_queue_depth")
                      .Help("Tasks waiting for a free worker slot.")
                      .Register(*registry_)
                      .Add({});
  workers_connected_ = &prometheus::BuildGauge()
                            .Name("shrink_workers_connected")
                            .Help("Workers holding a task stream.")
                            .Register(*registry_)
                            .Add({});
  worker_slots_ = &prometheus::BuildGauge()
                       .Name("shrink_worker_slots")
                       .Help("Task slots offered by connected workers.")
                       .Register(*registry_)
                       .Add({});
  worker_slots_busy_ = &prometheus::BuildGauge()
                            .Name("shrink_worker_slots_busy")
                            .Help("Worker task slots running a task.")
                            .Register(*registry_)
                            .Add({});
  auto& workers_by_runtime = prometheus::BuildGauge()
                                 .Name("shrink_workers_by_runtime")
                                 .Help("Connected workers that measure latency in each runtime.")
                                 .Register(*registry_);
  auto& jobs_waiting = prometheus::BuildGauge()
                           .Name("shrink_jobs_waiting_for_runtime")
                           .Help("Unfinished jobs that no connected worker can serve, by the job's runtime.")
                           .Register(*registry_);
  for (size_t i = 0; i < kRuntimes.size(); ++i) {
    workers_by_runtime_[i] = &workers_by_runtime.Add({{"runtime", kRuntimes[i]}});
    jobs_waiting_by_runtime_[i] = &jobs_waiting.Add({{"runtime", kRuntimes[i]}});
  }
  const std::array<std::pair<const char*, const char*>, kJobGauges> job_gauges = {{
      {"shrink_job_best_reward", "Best candidate reward so far, per running job."},
      {"shrink_job_best_size_ratio", "Size ratio (bytes / baseline bytes) of the best candidate so far, per running job."},
      {"shrink_job_best_retention", "Accuracy retention of the best candidate so far (validation), per running job."},
      {"shrink_job_candidate_size_ratio", "Size ratio of the latest evaluated candidate, per running job."},
      {"shrink_job_candidate_retention", "Accuracy retention of the latest evaluated candidate, per running job."},
      {"shrink_job_evaluated", "Candidates evaluated so far (ok or failed), per running job."},
      {"shrink_job_budget", "Evaluation budget, per running job."},
  }};
  for (size_t i = 0; i < kJobGauges; ++i) {
    job_families_[i] =
        &prometheus::BuildGauge().Name(job_gauges[i].first).Help(job_gauges[i].second).Register(*registry_);
  }
  blob_bytes_received_ = &prometheus::BuildCounter()
                              .Name("shrink_blob_bytes_received_total")
                              .Help("Blob bytes uploaded to the coordinator.")
                              .Register(*registry_)
                              .Add({});
  blob_bytes_sent_ = &prometheus::BuildCounter()
                          .Name("shrink_blob_bytes_sent_total")
                          .Help("Blob bytes served by the coordinator.")
                          .Register(*registry_)
                          .Add({});
}

CoordinatorMetrics::~CoordinatorMetrics() = default;

void CoordinatorMetrics::SetJobsByState(const std::map<std::string, int>& counts) {
  std::array<int, kJobStates.size()> totals{};
  for (const auto& [state, count] : counts) {
    std::string lower = absl::AsciiStrToLower(state);
    for (size_t i = 0; i < kJobStates.size(); ++i) {
      if (lower == kJobStates[i]) totals[i] += count;
    }
  }
  for (size_t i = 0; i < kJobStates.size(); ++i) jobs_by_state_[i]->Set(totals[i]);
}

void CoordinatorMetrics::JobSubmitted() { jobs_submitted_->Increment(); }

void CoordinatorMetrics::CandidateDispatched(const std::string& kind) {
  ChildFor(kTaskKinds, dispatched_by_kind_, *dispatched_family_, "kind", kind).Increment();
}

void CoordinatorMetrics::CandidateCompleted(const std::string& outcome) {
  ChildFor(kOutcomes, completed_by_outcome_, *completed_family_, "outcome", outcome).Increment();
}

void CoordinatorMetrics::ObserveEvaluationSeconds(double seconds) {
  evaluation_seconds_->Observe(seconds);
}

void CoordinatorMetrics::ObserveDispatchLatency(double seconds) { dispatch_latency_->Observe(seconds); }

void CoordinatorMetrics::HeartbeatReceived() { heartbeats_->Increment(); }

void CoordinatorMetrics::SetQueueDepth(int depth) { queue_depth_->Set(depth); }

void CoordinatorMetrics::SetWorkers(int connected, int slots, int busy) {
  workers_connected_->Set(connected);
  worker_slots_->Set(slots);
  worker_slots_busy_->Set(busy);
}

void CoordinatorMetrics::SetRuntimes(const std::map<std::string, int>& workers,
                                     const std::map<std::string, int>& waiting_jobs) {
  for (size_t i = 0; i < kRuntimes.size(); ++i) {
    auto w = workers.find(kRuntimes[i]);
    workers_by_runtime_[i]->Set(w == workers.end() ? 0 : w->second);
    auto j = waiting_jobs.find(kRuntimes[i]);
    jobs_waiting_by_runtime_[i]->Set(j == waiting_jobs.end() ? 0 : j->second);
  }
}

CoordinatorMetrics::JobSeries& CoordinatorMetrics::JobSeriesLocked(const std::string& job_id) {
  auto [it, inserted] = job_series_.try_emplace(job_id);
  if (inserted) {
    for (size_t i = 0; i < kJobGauges; ++i) it->second[i] = &job_families_[i]->Add({{"job_id", job_id}});
  }
  return it->second;
}

void CoordinatorMetrics::SetBestReward(const std::string& job_id, double reward) {
  std::lock_guard<std::mutex> lock(job_mutex_);
  JobSeriesLocked(job_id)[0]->Set(reward);
}

void CoordinatorMetrics::SetJobBest(const std::string& job_id, double reward, double size_ratio,
                                    double retention) {
  std::lock_guard<std::mutex> lock(job_mutex_);
  JobSeries& series = JobSeriesLocked(job_id);
  series[0]->Set(reward);
  series[1]->Set(size_ratio);
  series[2]->Set(retention);
}

void CoordinatorMetrics::SetLastCandidate(const std::string& job_id, double size_ratio, double retention) {
  std::lock_guard<std::mutex> lock(job_mutex_);
  JobSeries& series = JobSeriesLocked(job_id);
  series[3]->Set(size_ratio);
  series[4]->Set(retention);
}

void CoordinatorMetrics::SetJobProgress(const std::string& job_id, int evaluated, int budget) {
  std::lock_guard<std::mutex> lock(job_mutex_);
  JobSeries& series = JobSeriesLocked(job_id);
  series[5]->Set(evaluated);
  series[6]->Set(budget);
}

void CoordinatorMetrics::ClearJob(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(job_mutex_);
  auto it = job_series_.find(job_id);
  if (it == job_series_.end()) return;
  for (size_t i = 0; i < kJobGauges; ++i) job_families_[i]->Remove(it->second[i]);
  job_series_.erase(it);
}

void CoordinatorMetrics::BlobBytesReceived(int64_t n) {
  if (n > 0) blob_bytes_received_->Increment(static_cast<double>(n));
}

void CoordinatorMetrics::BlobBytesSent(int64_t n) {
  if (n > 0) blob_bytes_sent_->Increment(static_cast<double>(n));
}

}  // namespace shrink::server
