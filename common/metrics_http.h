// The /metrics (and /healthz) HTTP endpoint of every binary.
//
// Served with cpp-httplib rather than prometheus-cpp's civetweb Exposer: civetweb's
// 100 KB thread stacks cannot hold the static TLS of LibTorch's libraries, so the
// Exposer fails to start in any process that loads LibTorch (see DESIGN.md,
// "Metrics endpoint — measured trap"). httplib's worker threads have normal stacks.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}
namespace prometheus {
class Registry;
}

namespace shrink {

// Serves `GET /metrics` (Prometheus text format 0.0.4, from one registry) and
// `GET /healthz` ("ok") on a background thread.
//
// Thread-safety: Start and Stop may be called from any thread but not
// concurrently with each other; request handling is concurrent and only reads
// the registry, which prometheus-cpp makes thread-safe.
class MetricsHttpServer {
 public:
  explicit MetricsHttpServer(std::shared_ptr<prometheus::Registry> registry);
  ~MetricsHttpServer();  // stops
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // Binds "host:port" (port 0 = any free port), starts serving on a thread and
  // returns the bound port. InvalidArgument for a malformed address,
  // Unavailable if it cannot bind, FailedPrecondition if already started.
  absl::StatusOr<int> Start(const std::string& host_port);

  // Stops serving and joins the thread; safe to call when not started or twice.
  void Stop();

  // The bound port, or 0 when not serving.
  int port() const { return port_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<httplib::Server> server_;
  std::thread serving_thread_;
  int port_ = 0;
};

// Splits "host:port" (also "[::1]:port"; an empty host, ":9090", means every
// interface) into host and port. InvalidArgument naming the text when there is
// no port, the port is not a number in [0, 65535], or the brackets do not match.
absl::StatusOr<std::pair<std::string, int>> SplitHostPort(const std::string& host_port);

}  // namespace shrink
