// Embedded mode: the coordinator and its workers inside this process, talking
// over in-process gRPC channels — the same code paths as a cluster, no servers.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/status/statusor.h"
#include "client/remote/commands.h"
#include "server/coordinator_server.h"
#include "worker/service/worker_loop.h"
#include "worker/service/worker_metrics.h"

namespace shrink::client {

// Owns the in-process coordinator and worker threads; stops them on destruction.
class EmbeddedService {
 public:
  // Starts the coordinator and `options.workers` worker threads in this process.
  static absl::StatusOr<std::unique_ptr<EmbeddedService>> Start(const EmbeddedOptions& options);
  // Stops the workers and the coordinator; removes a temporary state folder.
  ~EmbeddedService();

  // A channel for CoordinatorClient.
  std::shared_ptr<grpc::Channel> channel() { return channel_; }

 private:
  EmbeddedService() = default;

  std::string state_dir_;
  bool remove_state_ = false;
  std::unique_ptr<server::CoordinatorServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::vector<std::unique_ptr<worker::WorkerMetrics>> metrics_;
  std::vector<std::unique_ptr<worker::WorkerLoop>> workers_;
  std::vector<std::thread> threads_;
};

}  // namespace shrink::client
