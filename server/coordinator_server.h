// shrink-coordinator assembled: the core, both gRPC services, the health
// service and /metrics. Used by the binary, by embedded mode and by tests.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/server.h>

#include "absl/status/statusor.h"
#include "common/metrics_http.h"
#include "common/server_credentials.h"
#include "server/access.h"
#include "server/coordinator.h"
#include "server/coordinator_metrics.h"
#include "server/services.h"

namespace shrink::server {

struct CoordinatorServerOptions {
  CoordinatorOptions coordinator;
  std::string listen;          // "host:port" (port 0 = any); empty = in-process channels only
  std::string metrics_listen;  // "host:port" for /metrics; empty = no HTTP endpoint
  ServerTlsOptions tls;        // TLS of the gRPC port; with tls.client_ca workers need certificates
  std::string tokens_file;     // `TOKEN TENANT` lines; clients need a token (requires TLS); empty = open
  int max_message_bytes = 0;   // largest gRPC message accepted; 0 = kMaxMessageBytes
};

// Thread-safe. Shutdown() is idempotent and also runs on destruction.
class CoordinatorServer {
 public:
  // Opens the state, resumes unfinished jobs, and starts serving.
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(const CoordinatorServerOptions& options);
  ~CoordinatorServer();

  int port() const { return port_; }                  // bound gRPC port (0 if none)
  int metrics_port() const { return metrics_port_; }  // bound /metrics port (0 if none)
  // A channel to this server that never leaves the process.
  std::shared_ptr<grpc::Channel> InProcessChannel();
  Coordinator* coordinator() { return coordinator_.get(); }
  // Blocks until Shutdown() is called from another thread.
  void Wait();
  void Shutdown();

 private:
  CoordinatorServer() = default;

  std::unique_ptr<CoordinatorMetrics> metrics_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<Access> access_;
  std::unique_ptr<CoordinatorService> client_service_;
  std::unique_ptr<WorkerPoolService> worker_service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<MetricsHttpServer> metrics_http_;
  int port_ = 0;
  int metrics_port_ = 0;
  int max_message_bytes_ = 0;
  std::mutex mu_;
  bool stopped_ = false;
};

}  // namespace shrink::server
