#include "common/metrics_http.h"

#include <sys/socket.h>

#include <atomic>
#include <cctype>
#include <memory>

#include <httplib.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace shrink {
namespace {

constexpr char kMetricsContentType[] = "text/plain; version=0.0.4";

// A scrape or a health probe at a time is the normal load; a few threads keep a
// lingering keep-alive connection from blocking the next scrape.
constexpr size_t kServingThreads = 4;

// httplib's default sets SO_REUSEPORT, which lets a second process bind the same
// port silently and steal half the scrapes. SO_REUSEADDR alone still allows a quick
// restart while making a real conflict fail to bind.
void ReuseAddressOnly(socket_t sock) {
  int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
}

bool AllDigits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::pair<std::string, int>> SplitHostPort(const std::string& host_port) {
  auto invalid = [&](const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat("address \"", host_port, "\" is not HOST:PORT: ", why));
  };
  std::string host;
  std::string port_text;
  if (!host_port.empty() && host_port[0] == '[') {
    size_t close = host_port.find(']');
    if (close == std::string::npos) return invalid("missing ']'");
    host = host_port.substr(1, close - 1);
    if (host.empty()) return invalid("empty IPv6 address in brackets");
    if (close + 1 >= host_port.size() || host_port[close + 1] != ':') {
      return invalid("missing ':PORT' after ']'");
    }
    port_text = host_port.substr(close + 2);
  } else {
    size_t colon = host_port.rfind(':');
    if (colon == std::string::npos) return invalid("missing ':PORT'");
    host = host_port.substr(0, colon);
    // A bare IPv6 address ("::1:80") is ambiguous; require brackets.
    if (host.find(':') != std::string::npos) return invalid("IPv6 addresses need brackets, e.g. [::1]:9090");
    port_text = host_port.substr(colon + 1);
  }
  int port = 0;
  if (!AllDigits(port_text) || !absl::SimpleAtoi(port_text, &port) || port > 65535) {
    return invalid(absl::StrCat("port \"", port_text, "\" is not a number in [0, 65535]"));
  }
  return std::make_pair(host, port);
}

MetricsHttpServer::MetricsHttpServer(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)) {}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

absl::StatusOr<int> MetricsHttpServer::Start(const std::string& host_port) {
  if (server_ != nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("metrics server already serving on port ", port_));
  }
  auto split = SplitHostPort(host_port);
  if (!split.ok()) return split.status();
  std::string host = split->first.empty() ? "0.0.0.0" : split->first;
  int requested_port = split->second;

  auto server = std::make_unique<httplib::Server>();
  server->set_socket_options(ReuseAddressOnly);
  server->new_task_queue = [] { return new httplib::ThreadPool(kServingThreads); };
  std::shared_ptr<prometheus::Registry> registry = registry_;
  server->Get("/metrics", [registry](const httplib::Request&, httplib::Response& response) {
    response.set_content(prometheus::TextSerializer().Serialize(registry->Collect()),
                         kMetricsContentType);
  });
  server->Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok", "text/plain");
  });

  int port = requested_port;
  if (requested_port == 0) {
    port = server->bind_to_any_port(host);
    if (port < 0) port = -1;
  } else if (!server->bind_to_port(host, requested_port)) {
    port = -1;
  }
  if (port < 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot bind metrics endpoint to ", host_port,
        " (address in use, not local, or host not resolvable)"));
  }

  // httplib's stop() does nothing until the accept loop has marked itself running,
  // so wait for that here; otherwise a quick Stop() would leave the thread blocked in
  // accept() forever. The wait is bounded by thread start-up (or an early exit).
  auto listen_returned = std::make_shared<std::atomic<bool>>(false);
  httplib::Server* raw_server = server.get();
  serving_thread_ = std::thread([raw_server, listen_returned] {
    raw_server->listen_after_bind();
    listen_returned->store(true);
  });
  while (!raw_server->is_running() && !listen_returned->load()) std::this_thread::yield();
  server_ = std::move(server);
  port_ = port;
  return port;
}

void MetricsHttpServer::Stop() {
  if (server_ == nullptr) return;
  server_->stop();
  if (serving_thread_.joinable()) serving_thread_.join();
  server_.reset();
  port_ = 0;
}

}  // namespace shrink
