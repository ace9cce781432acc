#include "worker/service/worker_metrics.h"

#include <unistd.h>

#include <fstream>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace shrink::worker {
namespace {

// Label value for anything outside the known set, so cardinality stays bounded.
constexpr char kOther[] = "other";

// From a 10 ms describe to an hour-long finalize with distillation fine-tuning.
const prometheus::Histogram::BucketBoundaries& TaskBuckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 600, 1800, 3600};
  return buckets;
}

// Index of `value` in `known`, or -1.
template <size_t N>
int IndexOf(const std::array<const char*, N>& known, const std::string& value) {
  for (size_t i = 0; i < N; ++i) {
    if (value == known[i]) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

WorkerMetrics::WorkerMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  tasks_family_ = &prometheus::BuildCounter()
                       .Name("shrink_worker_tasks_total")
                       .Help("Tasks finished by this worker, by kind and outcome.")
                       .Register(*registry_);
  task_seconds_family_ = &prometheus::BuildHistogram()
                              .Name("shrink_worker_task_seconds")
                              .Help("Wall time of one task on this worker, by kind.")
                              .Register(*registry_);
  for (size_t k = 0; k < kTaskKinds.size(); ++k) {
    for (size_t o = 0; o < kOutcomes.size(); ++o) {
      tasks_[k][o] = &tasks_family_->Add({{"kind", kTaskKinds[k]}, {"outcome", kOutcomes[o]}});
    }
    task_seconds_[k] = &task_seconds_family_->Add({{"kind", kTaskKinds[k]}}, TaskBuckets());
  }
  slots_ = &prometheus::BuildGauge()
                .Name("shrink_worker_slots")
                .Help("Task slots this worker offers.")
                .Register(*registry_)
                .Add({});
  slots_busy_ = &prometheus::BuildGauge()
                     .Name("shrink_worker_slots_busy")
                     .Help("Task slots running a task.")
                     .Register(*registry_)
                     .Add({});
  connected_ = &prometheus::BuildGauge()
                    .Name("shrink_worker_connected")
                    .Help("1 while the task stream to the coordinator is up.")
                    .Register(*registry_)
                    .Add({});
  blob_fetched_bytes_ = &prometheus::BuildCounter()
                             .Name("shrink_worker_blob_fetched_bytes_total")
                             .Help("Blob bytes downloaded from the coordinator.")
                             .Register(*registry_)
                             .Add({});
  blob_cache_hits_ = &prometheus::BuildCounter()
                          .Name("shrink_worker_blob_cache_hits_total")
                          .Help("Blobs found in the local cache instead of fetched.")
                          .Register(*registry_)
                          .Add({});
  memory_family_ = &prometheus::BuildGauge()
                        .Name("shrink_worker_memory_bytes")
                        .Help("Memory in use by device (cpu = resident set of the worker process).")
                        .Register(*registry_);
  UpdateProcessMemory();
}

WorkerMetrics::~WorkerMetrics() = default;

void WorkerMetrics::TaskFinished(const std::string& kind, const std::string& outcome,
                                 double seconds) {
  int k = IndexOf(kTaskKinds, kind);
  int o = IndexOf(kOutcomes, outcome);
  if (k >= 0 && o >= 0) {
    tasks_[k][o]->Increment();
  } else {
    // Family::Add returns the existing child when the labels are already there.
    tasks_family_->Add({{"kind", k >= 0 ? kTaskKinds[k] : kOther},
                        {"outcome", o >= 0 ? kOutcomes[o] : kOther}})
        .Increment();
  }
  UpdateProcessMemory();
  if (k >= 0) {
    task_seconds_[k]->Observe(seconds);
  } else {
    task_seconds_family_->Add({{"kind", kOther}}, TaskBuckets()).Observe(seconds);
  }
}

void WorkerMetrics::SetSlots(int total, int busy) {
  slots_->Set(total);
  slots_busy_->Set(busy);
}

void WorkerMetrics::SetConnected(bool connected) { connected_->Set(connected ? 1 : 0); }

void WorkerMetrics::BlobFetched(int64_t bytes) {
  if (bytes > 0) blob_fetched_bytes_->Increment(static_cast<double>(bytes));
}

void WorkerMetrics::BlobCacheHit() { blob_cache_hits_->Increment(); }

void WorkerMetrics::SetMemory(const std::string& device, int64_t bytes) {
  // Family::Add returns the existing child for a device seen before.
  memory_family_->Add({{"device", device}}).Set(static_cast<double>(bytes));
}

void WorkerMetrics::UpdateProcessMemory() {
  // statm: size resident shared ... (in pages).
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return;  // not Linux: leave the series absent
  SetMemory("cpu", resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE)));
}

}  // namespace shrink::worker
