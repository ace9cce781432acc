// The worker's connection to the coordinator: register, hold one task
// stream, run tasks on `slots` threads, stream results back, and reconnect
// with backoff when the stream breaks.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/channel.h>

#include "shrink/v1/worker_pool.grpc.pb.h"
#include "worker/service/blob_cache.h"
#include "worker/service/simulated_runner.h"
#include "worker/service/task_runner.h"
#include "worker/service/worker_metrics.h"

namespace shrink::worker {

struct WorkerOptions {
  std::string name = "worker";  // shown in the coordinator's logs
  int slots = 1;                // tasks run at once
  int threads = 0;              // intra-op threads per task; 0 = cores / slots
  std::string device = "cpu";   // "cpu" | "cuda:N"
  // Runtimes to advertise (common/runtimes.h), checked by the caller (ResolveRuntimes); empty =
  // libtorch, plus onnxruntime when its runner starts here (simulate mode: libtorch only).
  std::vector<std::string> runtimes;
  std::string cache_dir;        // blobs and materialised models
  double simulate_seconds = -1; // >= 0: answer with synthetic results after this delay, load no model
  double simulate_fail_rate = 0;  // simulate mode: fraction of evaluation attempts that fail
  // While tasks run or wait here, renew their leases this often (keep well under
  // the coordinator's --lease-seconds); <= 0: never.
  double heartbeat_seconds = 10;
};

// Thread-safe: Run() on one thread, Stop() from any other.
class WorkerLoop {
 public:
  WorkerLoop(std::shared_ptr<grpc::Channel> channel, WorkerOptions options, WorkerMetrics* metrics);
  ~WorkerLoop();

  // Serves tasks until Stop(); reconnects (100 ms doubling to 5 s) on failure.
  void Run();
  // Ends Run(): closes the stream and lets running tasks finish.
  void Stop();

 private:
  struct Session;  // one task stream; outlives the stream while tasks hold it
  struct Work {
    v1::Task task;
    std::shared_ptr<Session> session;
  };

  void Serve(const std::shared_ptr<Session>& session);
  void SlotLoop();
  // Every heartbeat_seconds: a Heartbeat listing the current stream's tasks, if any.
  void HeartbeatLoop();
  void UpdateSlotMetrics();

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerPool::Stub> stub_;
  const WorkerOptions options_;
  WorkerMetrics* const metrics_;
  BlobCache cache_;
  TaskRunner runner_;
  std::vector<std::string> runtimes_;  // advertised at every registration
  std::unique_ptr<SimulatedRunner> simulator_;  // set in simulate mode

  std::mutex mu_;
  std::condition_variable cv_;            // work queued or stopping (slot threads wait on it)
  std::condition_variable heartbeat_cv_;  // stopping (the heartbeat thread waits on it)
  bool stopping_ = false;
  std::deque<Work> queue_;
  std::set<std::string> cancelled_;  // recalled (before they started, or while running)
  std::map<std::string, std::shared_ptr<RecallFlag>> running_;  // task id -> its recall flag
  int busy_ = 0;
  std::shared_ptr<Session> session_;  // current stream, for Stop()
  std::vector<std::thread> slots_;
  std::thread heartbeat_;
};

}  // namespace shrink::worker
