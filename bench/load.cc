// Load bench: one real shrink-coordinator, N simulated workers
// (`shrink-worker --simulate S`, several workers per process), and C client
// threads that keep submitting and watching jobs. Prints a Markdown table:
// tasks/s against the ideal N/S, and the coordinator's dispatch latency
// (shrink_dispatch_latency_seconds: a result arriving -> the next task
// written to that slot). Reports figures only; never fails on a time.
//
// Usage: bench_load [--levels 1,2,4,...] [--simulate S] [--clients C]
//                   [--seconds T] [--per-process K] [--budget B] [--sync full|normal]
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpcpp/client_context.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/args.h"
#include "common/blob_upload.h"
#include "common/channel.h"
#include "common/files.h"
#include "shrink/v1/coordinator.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

// A child process whose stdout is read for its ready line; stderr goes to a log file.
struct Child {
  pid_t pid = -1;
  int out = -1;

  static Child Start(const std::vector<std::string>& argv, const std::string& log) {
    int fds[2];
    if (pipe(fds) != 0) std::abort();
    Child c;
    c.pid = fork();
    if (c.pid == 0) {
      dup2(fds[1], 1);
      int err = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(err, 2);
      close(fds[0]);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(fds[1]);
    c.out = fds[0];
    return c;
  }
  // key=value pairs of the first stdout line starting with `prefix`.
  std::map<std::string, std::string> ReadyLine(const std::string& prefix) {
    std::string line;
    char ch;
    while (read(out, &ch, 1) == 1) {
      if (ch != '\n') {
        line += ch;
        continue;
      }
      if (line.rfind(prefix, 0) == 0) {
        std::map<std::string, std::string> kv;
        for (absl::string_view field : absl::StrSplit(line, ' ')) {
          auto eq = field.find('=');
          if (eq != absl::string_view::npos) kv[std::string(field.substr(0, eq))] = std::string(field.substr(eq + 1));
        }
        return kv;
      }
      line.clear();
    }
    std::cerr << "bench_load: a child exited before printing '" << prefix << "'\n";
    std::exit(1);
  }
  void Stop() {
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
    close(out);
    pid = -1;
  }
};

std::string Scrape(int port) {
  httplib::Client client("127.0.0.1", port);
  auto r = client.Get("/metrics");
  return r && r->status == 200 ? r->body : "";
}

// Sum of the samples whose series text starts with `prefix`.
double Sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) {
      double v = 0;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &v)) return v;
    }
  }
  return 0;
}

// Cumulative histogram buckets (le -> count) of `name`.
std::vector<std::pair<double, double>> Buckets(const std::string& text, const std::string& name) {
  std::vector<std::pair<double, double>> out;
  std::istringstream in(text);
  std::string line;
  std::string prefix = name + "_bucket{le=\"";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    auto close = line.find('"', prefix.size());
    std::string le = line.substr(prefix.size(), close - prefix.size());
    double bound = le == "+Inf" ? INFINITY : std::stod(le);
    out.emplace_back(bound, std::stod(line.substr(line.rfind(' ') + 1)));
  }
  return out;
}

// Quantile from bucket deltas, interpolated inside the bucket as Prometheus's histogram_quantile does.
double Quantile(const std::vector<std::pair<double, double>>& before,
                const std::vector<std::pair<double, double>>& after, double q) {
  if (after.empty()) return NAN;
  std::vector<std::pair<double, double>> d;
  for (size_t i = 0; i < after.size(); ++i) {
    d.emplace_back(after[i].first, after[i].second - (i < before.size() ? before[i].second : 0));
  }
  double total = d.back().second;
  if (total <= 0) return NAN;
  double rank = q * total;
  double lower = 0, below = 0;
  for (const auto& [bound, count] : d) {
    if (count >= rank) {
      if (std::isinf(bound)) return INFINITY;  // beyond the largest bucket
      return lower + (bound - lower) * (rank - below) / std::max(1e-12, count - below);
    }
    lower = bound;
    below = count;
  }
  return lower;
}

// CPU seconds used so far by process `pid` (user + system).
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto after = stat.substr(stat.rfind(')') + 2);
  std::vector<std::string> f = absl::StrSplit(after, ' ');
  if (f.size() < 13) return 0;
  return (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct ClientStats {
  std::atomic<int64_t> errors{0};
  std::atomic<int64_t> jobs_done{0};
  std::atomic<int64_t> jobs_failed{0};
  std::string first_error;
  std::mutex mu;
  void Error(const std::string& what) {
    errors++;
    std::lock_guard<std::mutex> lock(mu);
    if (first_error.empty()) first_error = what;
  }
};

// Submits a job, watches it to the end, repeats until `stop`; cancels the last one.
void ClientLoop(const std::string& address, const shrink::v1::JobSpec& spec, const std::atomic<bool>& stop,
                ClientStats* stats) {
  auto stub = shrink::v1::Coordinator::NewStub(shrink::MakeCoordinatorChannel(address));
  while (!stop) {
    shrink::v1::SubmitJobRequest request;
    *request.mutable_spec() = spec;
    shrink::v1::Job job;
    grpc::ClientContext submit;
    submit.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status s = stub->SubmitJob(&submit, request, &job);
    if (!s.ok()) {
      stats->Error("SubmitJob: " + s.error_message());
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    grpc::ClientContext watch;
    shrink::v1::WatchJobRequest watch_request;
    watch_request.set_id(job.id());
    auto reader = stub->WatchJob(&watch, watch_request);
    shrink::v1::JobEvent event;
    shrink::v1::JobState state = shrink::v1::QUEUED;
    std::atomic<bool> watched{false};
    // Ends the watch when the bench stops.
    std::thread canceller([&] {
      while (!stop && !watched) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (!watched) watch.TryCancel();
    });
    while (reader->Read(&event)) state = event.job().state();
    reader->Finish();
    watched = true;
    canceller.join();
    if (state == shrink::v1::SUCCEEDED) {
      stats->jobs_done++;
    } else if (state == shrink::v1::FAILED) {
      stats->jobs_failed++;
      stats->Error("job failed: " + event.job().error());
    } else if (!stop) {
      stats->Error("watch ended with the job " + std::to_string(state));
    }
    if (stop && state != shrink::v1::SUCCEEDED && state != shrink::v1::FAILED) {
      grpc::ClientContext cancel;
      shrink::v1::CancelJobRequest cancel_request;
      cancel_request.set_id(job.id());
      shrink::v1::Job cancelled;
      stub->CancelJob(&cancel, cancel_request, &cancelled);
    }
  }
}

// "1.23 ms", or "> 1000 ms" beyond the histogram's largest bucket.
std::string Ms(double seconds) {
  if (std::isinf(seconds)) return "> 1000 ms";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.2f ms", 1000 * seconds);
  return buffer;
}

int Main(int argc, char** argv) {
  const std::vector<shrink::FlagSpec> flags = {
      {"levels", "simulated worker counts to measure", "1,2,4,8,16,32,64,128,256"},
      {"simulate", "seconds each simulated task takes", "1"},
      {"clients", "concurrent clients submitting and watching jobs", "50"},
      {"seconds", "measured seconds per level (after a warm-up)", "10"},
      {"per-process", "simulated workers per shrink-worker process", "32"},
      {"budget", "candidates per job", "100"},
      {"bin", "folder of the shrink binaries", "build/bin"},
      {"sync", "the coordinator's --sync: full | normal", "full"},
      {"help", "show this help", "", true},
  };
  auto args = shrink::Args::Parse(argc, argv, 1, flags);
  if (!args.ok() || args->GetBool("help")) {
    std::cout << shrink::FormatUsage("bench_load [flags]", flags);
    return args.ok() ? 0 : 2;
  }
  std::vector<int> levels;
  for (absl::string_view l : absl::StrSplit(args->Get("levels"), ',')) levels.push_back(std::stoi(std::string(l)));
  const double simulate = *args->GetDouble("simulate");
  const int clients = static_cast<int>(*args->GetInt("clients"));
  const double seconds = *args->GetDouble("seconds");
  const int per_process = static_cast<int>(*args->GetInt("per-process"));
  const std::string bin = args->Get("bin");
  std::string dir = *shrink::MakeTempDir("shrink-load-");

  Child coordinator = Child::Start({bin + "/shrink-coordinator", "--listen", "127.0.0.1:0", "--metrics",
                                    "127.0.0.1:0", "--state", dir + "/state", "--max-jobs-per-tenant", "0", "--sync", args->Get("sync")},
                                   dir + "/coordinator.log");
  auto ready = coordinator.ReadyLine("shrink-coordinator ready");
  const std::string address = ready["grpc"];
  const int metrics_port = std::stoi(ready["metrics"].substr(ready["metrics"].rfind(':') + 1));

  // A model the simulated workers never open: two small files.
  shrink::v1::JobSpec spec;
  {
    auto stub = shrink::v1::Coordinator::NewStub(shrink::MakeCoordinatorChannel(address));
    for (const char* name : {"config.json", "model.safetensors"}) {
      std::string path = dir + "/" + name;
      (void)shrink::WriteFileAtomic(path, std::string(name[0] == 'c' ? 64 : 200000, 'x'));
      auto ref = shrink::DescribeFile(path, name);
      if (!ref.ok() || !shrink::UploadFile(stub.get(), path, *ref).ok()) {
        std::cerr << "bench_load: cannot upload the model\n";
        return 1;
      }
      *spec.add_model_files() = *ref;
    }
  }
  spec.mutable_task()->set_name("fashion-mnist");
  spec.mutable_goal()->set_target_size(0.25);
  spec.mutable_goal()->set_min_retention(0.9);
  spec.set_budget(static_cast<int>(*args->GetInt("budget")));
  spec.set_search("random");

  std::printf("| workers | processes x workers | ideal tasks/s | tasks/s | of linear | dispatch p50 | dispatch p99 | "
              "coordinator CPU | errors |\n|---|---|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  double base_per_worker = 0;
  for (int level : levels) {
    std::vector<Child> workers;
    for (int left = level, i = 0; left > 0; ++i) {
      int k = std::min(left, per_process);
      left -= k;
      workers.push_back(Child::Start(
          {bin + "/shrink-worker", "--coordinator", address, "--simulate", args->Get("simulate"), "--workers",
           std::to_string(k), "--slots", "1", "--cache", dir + "/w" + std::to_string(i), "--name",
           "sim" + std::to_string(i)},
          dir + "/worker.log"));
      workers.back().ReadyLine("shrink-worker ready");
    }
    while (Sample(Scrape(metrics_port), "shrink_workers_connected") < level) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::atomic<bool> stop{false};
    ClientStats stats;
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) threads.emplace_back(ClientLoop, address, spec, std::cref(stop), &stats);
    // Warm-up: every slot busy once.
    std::this_thread::sleep_for(std::chrono::duration<double>(std::max(2.0, 2 * simulate)));
    std::string before = Scrape(metrics_port);
    double cpu_before = CpuSeconds(coordinator.pid);
    auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    std::string after = Scrape(metrics_port);
    double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    double cpu = (CpuSeconds(coordinator.pid) - cpu_before) / elapsed;
    stop = true;
    for (auto& t : threads) t.join();
    for (auto& w : workers) w.Stop();

    auto done = [](const std::string& text) {
      return Sample(text, "shrink_candidates_completed_total{outcome=\"ok\"}") +
             Sample(text, "shrink_candidates_completed_total{outcome=\"failed\"}");
    };
    double rate = (done(after) - done(before)) / elapsed;
    double ideal = level / simulate;
    if (base_per_worker == 0) base_per_worker = rate / level;
    double linear = rate / (base_per_worker * level);
    auto b0 = Buckets(before, "shrink_dispatch_latency_seconds");
    auto b1 = Buckets(after, "shrink_dispatch_latency_seconds");
    double failed_tasks = Sample(after, "shrink_candidates_completed_total{outcome=\"failed\"}") -
                          Sample(before, "shrink_candidates_completed_total{outcome=\"failed\"}");
    int64_t errors = stats.errors.load() + static_cast<int64_t>(failed_tasks);
    std::printf("| %d | %zu x %d | %.1f | %.1f | %.0f%% (%.0f%% of ideal) | %s | %s | %.0f%% | %lld%s |\n",
                level, workers.size(), std::min(level, per_process), ideal, rate, 100 * linear,
                100 * rate / ideal, Ms(Quantile(b0, b1, 0.5)).c_str(), Ms(Quantile(b0, b1, 0.99)).c_str(), 100 * cpu,
                static_cast<long long>(errors), stats.first_error.empty() ? "" : (" (" + stats.first_error + ")").c_str());
    std::fflush(stdout);
  }
  coordinator.Stop();
  shrink::RemoveAll(dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
