// shrink-coordinator: hosts jobs, the search, the candidate queue and the
// blob store. See README.md for the flags.
#include <cstdio>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "common/args.h"
#include "common/log.h"
#include "common/metrics_http.h"
#include "common/signals.h"
#include "server/coordinator_server.h"

namespace {

const std::vector<shrink::FlagSpec> kFlags = {
    {"listen", "gRPC address HOST:PORT (port 0 = any)", "127.0.0.1:50051"},
    {"metrics", "serve /metrics on HOST:PORT (port 0 = any; empty = off)", ""},
    {"state", "folder for the job database and blobs (required)", ""},
    {"lease-seconds", "a task with no result and no worker heartbeat for this long goes back to the queue (> the workers' --heartbeat-seconds)", "60"},
    {"max-task-seconds", "heartbeats never keep a task longer than this after its dispatch (>= --lease-seconds)", "21600"},
    {"tls-cert", "PEM certificate of this server: serve TLS (with --tls-key)", ""},
    {"tls-key", "PEM private key of --tls-cert", ""},
    {"tls-client-ca", "PEM CA that signs worker certificates: workers need one (mutual TLS)", ""},
    {"tokens", "file of `TOKEN TENANT` lines: clients need a bearer token (needs TLS)", ""},
    {"max-blob-mb", "largest model or data file accepted, MiB", "4096"},
    {"max-message-mb", "largest gRPC message accepted, MiB (>= 2)", "16"},
    {"max-jobs-per-tenant", "unfinished jobs one tenant may have (0 = no limit)", "100"},
    {"sync", "full: fsync every commit (survives power loss); normal: survives a crash, ~100x faster", "full"},
    {"help", "show this help", "", true},
    {"version", "print the version", "", true},
};

int Main(int argc, char** argv) {
  shrink::InitLogging("shrink-coordinator");
  const std::string usage = shrink::FormatUsage("shrink-coordinator --state DIR [flags]", kFlags);
  auto args = shrink::Args::Parse(argc, argv, 1, kFlags);
  if (!args.ok()) {
    std::cerr << "shrink-coordinator: " << args.status().message() << "\n" << usage;
    return 2;
  }
  if (args->GetBool("help")) {
    std::cout << usage;
    return 0;
  }
  if (args->GetBool("version")) {
    std::cout << "shrink-coordinator " << SHRINK_VERSION << "\n";
    return 0;
  }
  auto lease = args->GetDouble("lease-seconds");
  auto max_task = args->GetDouble("max-task-seconds");
  if (args->Get("state").empty() || !lease.ok() || *lease <= 0) {
    std::cerr << "shrink-coordinator: --state is required and --lease-seconds must be > 0\n" << usage;
    return 2;
  }
  if (!max_task.ok() || *max_task < *lease) {
    std::cerr << "shrink-coordinator: --max-task-seconds must be a number >= --lease-seconds\n";
    return 2;
  }
  auto max_blob_mb = args->GetInt("max-blob-mb");
  auto max_message_mb = args->GetInt("max-message-mb");
  auto max_jobs = args->GetInt("max-jobs-per-tenant");
  if (!max_blob_mb.ok() || *max_blob_mb < 1 || !max_message_mb.ok() || *max_message_mb < 2 ||
      *max_message_mb > 1024 || !max_jobs.ok() || *max_jobs < 0) {
    std::cerr << "shrink-coordinator: --max-blob-mb must be >= 1, --max-message-mb in [2, 1024] (blobs move in 1 MiB chunks), "
                 "--max-jobs-per-tenant >= 0\n";
    return 2;
  }
  shrink::server::CoordinatorServerOptions options;
  options.coordinator.state_dir = args->Get("state");
  options.coordinator.lease = absl::Seconds(*lease);
  options.coordinator.max_task = absl::Seconds(*max_task);
  options.coordinator.max_blob_bytes = *max_blob_mb << 20;
  options.coordinator.max_active_jobs_per_tenant = static_cast<int>(*max_jobs);
  if (args->Get("sync") != "full" && args->Get("sync") != "normal") {
    std::cerr << "shrink-coordinator: --sync is full or normal\n";
    return 2;
  }
  options.coordinator.fsync_each_commit = args->Get("sync") == "full";
  options.max_message_bytes = static_cast<int>(*max_message_mb << 20);
  options.tls.cert = args->Get("tls-cert");
  options.tls.key = args->Get("tls-key");
  options.tls.client_ca = args->Get("tls-client-ca");
  options.tokens_file = args->Get("tokens");
  options.listen = args->Get("listen");
  options.metrics_listen = args->Get("metrics");

  shrink::InstallTerminationHandler();  // before any server thread starts
  auto server = shrink::server::CoordinatorServer::Start(options);
  if (!server.ok()) {
    std::cerr << "shrink-coordinator: " << server.status().message() << "\n";
    return 1;
  }
  shrink::server::CoordinatorServer* raw = server->get();
  shrink::OnTerminationSignal([raw] { raw->Shutdown(); });
  auto host = [](const std::string& address) {
    auto split = shrink::SplitHostPort(address);
    return split.ok() ? split->first : std::string("?");
  };
  std::string metrics_address =
      options.metrics_listen.empty() ? "-"
                                     : absl::StrCat(host(options.metrics_listen), ":", (*server)->metrics_port());
  // One machine-readable line so launchers and tests learn the bound ports.
  std::printf("shrink-coordinator ready grpc=%s:%d metrics=%s\n", host(options.listen).c_str(),
              (*server)->port(), metrics_address.c_str());
  std::fflush(stdout);
  (*server)->Wait();
  shrink::OnTerminationSignal(nullptr);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
