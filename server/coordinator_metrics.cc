#include "server/coordinator_metrics.h"

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
  best_reward_family_ = &prometheus::BuildGauge()
                             .Name("shrink_job_best_reward")
                             .Help("Best candidate reward so far, per running job.")
                             .Register(*registry_);
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

void CoordinatorMetrics::SetQueueDepth(int depth) { queue_depth_->Set(depth); }

void CoordinatorMetrics::SetWorkers(int connected, int slots, int busy) {
  workers_connected_->Set(connected);
  worker_slots_->Set(slots);
  worker_slots_busy_->Set(busy);
}

void CoordinatorMetrics::SetBestReward(const std::string& job_id, double reward) {
  std::lock_guard<std::mutex> lock(best_reward_mutex_);
  auto [it, inserted] = best_reward_by_job_.try_emplace(job_id, nullptr);
  if (inserted) it->second = &best_reward_family_->Add({{"job", job_id}});
  it->second->Set(reward);
}

void CoordinatorMetrics::ClearJob(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(best_reward_mutex_);
  auto it = best_reward_by_job_.find(job_id);
  if (it == best_reward_by_job_.end()) return;
  best_reward_family_->Remove(it->second);
  best_reward_by_job_.erase(it);
}

void CoordinatorMetrics::BlobBytesReceived(int64_t n) {
  if (n > 0) blob_bytes_received_->Increment(static_cast<double>(n));
}

void CoordinatorMetrics::BlobBytesSent(int64_t n) {
  if (n > 0) blob_bytes_sent_->Increment(static_cast<double>(n));
}

}  // namespace shrink::server
