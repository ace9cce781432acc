// The worker's Prometheus metrics, every family built up front. Deliberately free of
// LibTorch includes: it is compiled and tested without the slow torch headers.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace shrink::worker {

// Owns the worker's registry and its families (names are the interface the
// dashboards rely on; see each method).
//
// Thread-safety: every method may be called from any thread (prometheus-cpp's
// metrics are atomic; families are built in the constructor and never change,
// apart from a lazily added "other" label value).
class WorkerMetrics {
 public:
  // The label values created up front; others are counted under "other".
  static constexpr std::array<const char*, 3> kTaskKinds = {"describe", "evaluate", "finalize"};
  static constexpr std::array<const char*, 3> kOutcomes = {"ok", "failed", "recalled"};

  WorkerMetrics();
  ~WorkerMetrics();
  WorkerMetrics(const WorkerMetrics&) = delete;
  WorkerMetrics& operator=(const WorkerMetrics&) = delete;

  // shrink_worker_tasks_total{kind,outcome} += 1 and
  // shrink_worker_task_seconds{kind} observes `seconds`.
  void TaskFinished(const std::string& kind, const std::string& outcome, double seconds);

  // shrink_worker_slots and shrink_worker_slots_busy.
  void SetSlots(int total, int busy);

  // shrink_worker_connected: 1 while the task stream to the coordinator is up.
  void SetConnected(bool connected);

  // shrink_worker_blob_fetched_bytes_total += bytes (downloaded, cache misses).
  void BlobFetched(int64_t bytes);

  // shrink_worker_blob_cache_hits_total += 1.
  void BlobCacheHit();

  // shrink_worker_memory_bytes{device}: memory in use on `device` ("cpu" = the
  // process's resident set; a CUDA build reports "cuda:N" allocator bytes here).
  void SetMemory(const std::string& device, int64_t bytes);

  // Sets shrink_worker_memory_bytes{device="cpu"} from /proc/self/statm; called
  // at start and after every task.
  void UpdateProcessMemory();

  // The registry to serve on /metrics.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* tasks_family_;
  std::array<std::array<prometheus::Counter*, kOutcomes.size()>, kTaskKinds.size()> tasks_;
  prometheus::Family<prometheus::Histogram>* task_seconds_family_;
  std::array<prometheus::Histogram*, kTaskKinds.size()> task_seconds_;
  prometheus::Gauge* slots_;
  prometheus::Gauge* slots_busy_;
  prometheus::Gauge* connected_;
  prometheus::Counter* blob_fetched_bytes_;
  prometheus::Counter* blob_cache_hits_;
  prometheus::Family<prometheus::Gauge>* memory_family_;
};

}  // namespace shrink::worker
