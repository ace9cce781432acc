// A worker that speaks the real WorkerPool protocol but answers tasks with
// synthetic results from a callback — for coordinator tests without models.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include "shrink/v1/worker_pool.grpc.pb.h"

namespace shrink::testing {

// A plausible result for `task`: size from the policy's bits, retention
// falling with pruning. FINALIZE uploads two small files as the artifact.
v1::TaskResult SyntheticResult(const v1::Task& task, v1::WorkerPool::Stub* stub);

// Answers each task with `answer(task)`; a std::nullopt-like empty task_id
// in the returned result means "never answer" (a hung worker).
class FakeWorker {
 public:
  using Answer = std::function<v1::TaskResult(const v1::Task&, v1::WorkerPool::Stub*)>;
  // Registers with `runtimes` advertised (empty: none named, which the coordinator reads as libtorch).
  FakeWorker(std::shared_ptr<grpc::Channel> channel, int slots, Answer answer,
             const std::vector<std::string>& runtimes = {});
  ~FakeWorker();
  // Drops the stream, as a dying worker would.
  void Stop();
  int tasks_seen() const;
  // Sends `message` on the task stream (e.g. a late result); false once it is gone.
  bool Send(const v1::WorkerMessage& message);
  // Sends a Heartbeat naming `task_ids`, as shrink-worker does while tasks run.
  bool Heartbeat(const std::vector<std::string>& task_ids);

 private:
  void Run();
  std::unique_ptr<v1::WorkerPool::Stub> stub_;
  int slots_;
  Answer answer_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::WorkerMessage, v1::CoordinatorMessage>> stream_;
  std::mutex write_mu_;  // one writer at a time on the stream
  bool finished_ = false;  // guarded by write_mu_: no writes once Finish() runs
  mutable std::mutex mu_;
  int tasks_seen_ = 0;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace shrink::testing
