// shrink-worker: registers with a coordinator and evaluates compression
// candidates. See README.md for the flags.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/args.h"
#include "common/channel.h"
#include "common/log.h"
#include "common/metrics_http.h"
#include "common/signals.h"
#include "worker/nn/device.h"
#include "worker/runtime/available_runtimes.h"
#include "worker/service/worker_loop.h"
#include "worker/service/worker_metrics.h"

namespace {

const std::vector<shrink::FlagSpec> kFlags = {
    {"coordinator", "coordinator address HOST:PORT (required)", ""},
    {"metrics", "serve /metrics on HOST:PORT (port 0 = any)", ""},
    {"slots", "tasks run at once", "1"},
    {"threads", "intra-op threads per task (0 = cores / slots)", "0"},
    {"device", "where models compute: cpu, or cuda:N with a CUDA LibTorch and a GPU", "cpu"},
    {"runtimes", "runtimes to measure latency in, comma-separated: libtorch, onnxruntime (default: libtorch, plus onnxruntime when node and onnxruntime-node are installed)", ""},
    {"cache", "folder for fetched blobs and models", "/tmp/shrink-worker-cache"},
    {"name", "name shown in the coordinator's logs (default: host name)", ""},
    {"tls-ca", "PEM CA of the coordinator's certificate: connect with TLS", ""},
    {"tls-cert", "PEM client certificate of this worker (mutual TLS; with --tls-key)", ""},
    {"tls-key", "PEM private key of --tls-cert", ""},
    {"heartbeat-seconds", "while tasks run, renew their leases this often (well under the coordinator's --lease-seconds)", "10"},
    {"simulate", "answer with synthetic results after SECONDS; load no model (load tests)", ""},
    {"simulate-fail-rate", "with --simulate: fraction of evaluation attempts that fail", "0"},
    {"workers", "with --simulate: register this many independent workers from this process", "1"},
    {"help", "show this help", "", true},
    {"version", "print the version", "", true},
};

int Main(int argc, char** argv) {
  shrink::InstallTerminationHandler();  // before any thread starts
  shrink::InitLogging("shrink-worker");
  auto args = shrink::Args::Parse(argc, argv, 1, kFlags);
  const std::string usage = shrink::FormatUsage("shrink-worker --coordinator HOST:PORT [flags]", kFlags);
  if (!args.ok()) {
    std::cerr << "shrink-worker: " << args.status().message() << "\n" << usage;
    return 2;
  }
  if (args->GetBool("help")) {
    std::cout << usage;
    return 0;
  }
  if (args->GetBool("version")) {
    std::cout << "shrink-worker " << SHRINK_VERSION << "\n";
    return 0;
  }
  if (args->Get("coordinator").empty()) {
    std::cerr << "shrink-worker: --coordinator is required\n" << usage;
    return 2;
  }
  auto slots = args->GetInt("slots");
  auto threads = args->GetInt("threads");
  if (!slots.ok() || !threads.ok() || *slots < 1 || *threads < 0) {
    std::cerr << "shrink-worker: --slots must be >= 1 and --threads >= 0\n";
    return 2;
  }
  // A device this process cannot use is a usage error, reported before connecting anywhere.
  if (auto device = shrink::worker::ValidateDevice(args->Get("device")); !device.ok()) {
    std::cerr << "shrink-worker: --device: " << device.message() << "\n";
    return 2;
  }
  auto heartbeat = args->GetDouble("heartbeat-seconds");
  if (!heartbeat.ok() || !(*heartbeat > 0)) {
    std::cerr << "shrink-worker: --heartbeat-seconds must be > 0\n";
    return 2;
  }
  auto workers = args->GetInt("workers");
  double simulate = -1, fail_rate = 0;
  if (args->Has("simulate")) {
    auto seconds = args->GetDouble("simulate");
    auto rate = args->GetDouble("simulate-fail-rate");
    if (!seconds.ok() || *seconds < 0 || !rate.ok() || *rate < 0 || *rate > 1) {
      std::cerr << "shrink-worker: --simulate must be >= 0 and --simulate-fail-rate in [0, 1]\n";
      return 2;
    }
    simulate = *seconds;
    fail_rate = *rate;
  }
  if (!workers.ok() || *workers < 1 || *workers > 1024 || (*workers > 1 && simulate < 0)) {
    std::cerr << "shrink-worker: --workers must be in [1, 1024], and above 1 only with --simulate\n";
    return 2;
  }
  shrink::ChannelOptions channel_options;
  channel_options.tls_ca = args->Get("tls-ca");
  channel_options.tls_cert = args->Get("tls-cert");
  channel_options.tls_key = args->Get("tls-key");
  if (auto s = shrink::ValidateChannelOptions(channel_options); !s.ok()) {
    std::cerr << "shrink-worker: " << s.message() << "\n";
    return 2;
  }
  shrink::worker::WorkerOptions options;
  options.simulate_seconds = simulate;
  options.simulate_fail_rate = fail_rate;
  options.heartbeat_seconds = *heartbeat;
  options.slots = static_cast<int>(*slots);
  options.threads = static_cast<int>(*threads);
  options.device = args->Get("device");
  if (!args->Get("runtimes").empty()) {
    std::vector<std::string> requested = absl::StrSplit(args->Get("runtimes"), ',', absl::SkipWhitespace());
    // A simulated worker runs no model: it only needs known names.
    auto runtimes = simulate >= 0 ? shrink::worker::CheckRuntimeNames(requested) : shrink::worker::ResolveRuntimes(requested);
    if (!runtimes.ok()) {
      std::cerr << "shrink-worker: --runtimes: " << runtimes.status().message() << "\n";
      return 2;
    }
    options.runtimes = *runtimes;
  }
  options.cache_dir = args->Get("cache");
  options.name = args->Get("name");
  if (options.name.empty()) {
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    options.name = std::string(host) + ":" + std::to_string(getpid());
  }

  shrink::worker::WorkerMetrics metrics;
  // One loop per registered worker, each on its own connection, as separate processes would be.
  std::vector<std::unique_ptr<shrink::worker::WorkerLoop>> loops;
  for (int64_t i = 0; i < *workers; ++i) {
    shrink::worker::WorkerOptions mine = options;
    if (*workers > 1) {
      mine.name = options.name + "/" + std::to_string(i);
      mine.cache_dir = options.cache_dir + "/" + std::to_string(i);
    }
    loops.push_back(std::make_unique<shrink::worker::WorkerLoop>(
        *shrink::MakeCoordinatorChannel(args->Get("coordinator"), channel_options, /*own_connection=*/true),
        mine, &metrics));
  }
  shrink::OnTerminationSignal([&loops] {
    for (auto& loop : loops) loop->Stop();
  });
  shrink::MetricsHttpServer http(metrics.registry());
  std::string metrics_address = "-";
  if (!args->Get("metrics").empty()) {
    auto port = http.Start(args->Get("metrics"));
    if (!port.ok()) {
      std::cerr << "shrink-worker: --metrics: " << port.status().message() << "\n";
      return 1;
    }
    metrics_address = shrink::SplitHostPort(args->Get("metrics"))->first + ":" + std::to_string(*port);
  }
  // One machine-readable line so launchers and tests learn the bound port.
  std::printf("shrink-worker ready metrics=%s\n", metrics_address.c_str());
  std::fflush(stdout);
  std::vector<std::thread> runs;
  for (size_t i = 1; i < loops.size(); ++i) runs.emplace_back([&loops, i] { loops[i]->Run(); });
  loops[0]->Run();
  for (auto& t : runs) t.join();
  shrink::OnTerminationSignal(nullptr);
  http.Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
