// The compression passes on the reference CNN: one row per policy with test
// accuracy, real bytes on disk, params, FLOPs and median batch latency at 1
// and 2 intra-op threads, each ratio against the uncompressed model measured
// in the same run. Prints Markdown for BENCHMARKS.md; never fails on a time.
//
// Usage: bench_compress_passes [--model DIR] [--rounds N]
//   Each model is evaluated at each thread count in N rounds (default 3), round-robin over
//   the policies, and the lowest of the N median latencies is reported: on a shared 2-core
//   machine a few seconds of outside load can double one median at 2 threads.
//   DIR defaults to ${SHRINK_CACHE:-~/.cache/shrink}/reference/cnn-fashion-mnist, where
//   `shrink demo` caches the reference CNN; trained there (TrainCnn defaults) when missing.
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/policy.h"
#include "worker/nn/int8_linear.h"
#include "worker/model/model.h"
#include "worker/eval/evaluate.h"
#include "worker/train/train.h"
#include "worker/nn/device.h"

namespace {

using shrink::worker::EvalOptions;
using shrink::worker::Model;

constexpr int kThreadCounts[] = {1, 2};

struct PolicyCase {
  std::string name;
  std::string json;  // empty: the loaded model as it is
};

std::string DefaultModelDir() {
  std::string cache;
  if (const char* env = std::getenv("SHRINK_CACHE"); env != nullptr && *env != '\0') {
    cache = env;
  } else {
    const char* home = std::getenv("HOME");
    cache = std::string(home != nullptr ? home : ".") + "/.cache/shrink";
  }
  return cache + "/reference/cnn-fashion-mnist";
}

int Fail(const std::string& what, const absl::Status& status) {
  std::fprintf(stderr, "bench_compress_passes: %s: %s\n", what.c_str(), std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir = DefaultModelDir();
  int rounds = 3;
  const char* usage = "usage: bench_compress_passes [--model DIR] [--rounds N]\n";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--model" && i + 1 < argc) {
      model_dir = argv[++i];
    } else if (arg.rfind("--model=", 0) == 0) {
      model_dir = arg.substr(8);
    } else if (arg == "--rounds" && i + 1 < argc && std::atoi(argv[i + 1]) > 0) {
      rounds = std::atoi(argv[++i]);
    } else if (arg == "--help" || arg == "-h") {
      std::printf("%s", usage);
      return 0;
    } else {
      std::fprintf(stderr, "%s", usage);
      return 2;
    }
  }

  const int threads_at_start = at::get_num_threads();
  shrink::worker::ConfigureTorch(0);
  std::printf("machine: %u hardware threads, at::get_num_threads() at start = %d (after ConfigureTorch(0): %d), "
              "qengine ONEDNN active = %s, int8 linear weights %s\n",
              std::thread::hardware_concurrency(), threads_at_start, at::get_num_threads(),
              at::globalContext().qEngine() == at::QEngine::ONEDNN ? "yes" : "no",
              shrink::worker::OnednnLinearAcceptsPerChannel() ? "per-channel" : "per-tensor");

  auto data = shrink::worker::ImageDataset::LoadFashionMnist(shrink::DebianFashionMnistFiles());
  if (!data.ok()) return Fail("loading Fashion-MNIST", data.status());

  if (!std::filesystem::exists(std::filesystem::path(model_dir) / "model.safetensors")) {
    std::printf("no reference model in %s: training it with TrainCnn defaults\n", model_dir.c_str());
    auto report = shrink::worker::TrainCnn(**data, shrink::worker::TrainOptions(), model_dir,
                                           [](const std::string& line) { std::printf("  %s\n", line.c_str()); });
    if (!report.ok()) return Fail("training", report.status());
    std::printf("trained and saved %s (test accuracy %.2f%%, %.0f s)\n", model_dir.c_str(),
                100 * report->test_accuracy, report->seconds);
  }
  auto base = Model::Load(model_dir);
  if (!base.ok()) return Fail("loading " + model_dir, base.status());
  std::printf("model: %s\n", model_dir.c_str());

  const std::vector<PolicyCase> cases = {
      {"fp32 (no change)", ""},
      {"uniform int8", R"({"uniform": {"bits": 8}})"},
      {"uniform fp16", R"({"uniform": {"bits": 16}})"},
      {"prune 0.25", R"({"uniform": {"prune": 0.25}})"},
      {"prune 0.5", R"({"uniform": {"prune": 0.5}})"},
      {"prune 0.5 + int8", R"({"uniform": {"prune": 0.5, "bits": 8}})"},
      {"per-layer, all int8: conv1 p0, conv2 p0.5, fc1 p0.75, fc2",
       R"({"layers": [{"name": "conv1", "prune": 0, "bits": 8}, {"name": "conv2", "prune": 0.5, "bits": 8},
                      {"name": "fc1", "prune": 0.75, "bits": 8}, {"name": "fc2", "bits": 8}]})"},
  };

  struct Row {
    std::string name;
    std::unique_ptr<Model> applied;  // null: the loaded model
    shrink::v1::Metrics by_threads[2];
    bool measured[2] = {false, false};
  };
  std::vector<Row> rows;
  for (const PolicyCase& c : cases) {
    Row row{c.name, nullptr, {}};
    if (!c.json.empty()) {
      auto policy = shrink::ParsePolicyJson(c.json);
      if (!policy.ok()) return Fail(c.name, policy.status());
      auto result = (*base)->Apply(*policy);
      if (!result.ok()) return Fail("applying " + c.name, result.status());
      row.applied = std::move(*result);
    }
    rows.push_back(std::move(row));
  }
  for (int round = 0; round < rounds; ++round) {
    for (Row& row : rows) {
      const Model* model = row.applied ? row.applied.get() : base->get();
      for (int t = 0; t < 2; ++t) {
        EvalOptions options;
        options.threads = kThreadCounts[t];
        options.latency_batch = 32;
        options.warmup_runs = 5;
        options.timed_runs = 30;
        auto metrics = Evaluate(*model, **data, "test", options);
        if (!metrics.ok()) return Fail("evaluating " + row.name, metrics.status());
        if (!row.measured[t] || metrics->latency_ms() < row.by_threads[t].latency_ms()) {
          row.by_threads[t] = *metrics;
          row.measured[t] = true;
        }
      }
    }
  }

  const shrink::v1::Metrics* fp32 = rows.front().by_threads;
  std::printf("\nFashion-MNIST test split (%lld examples); latency = median of %d forward passes of a batch of %d "
              "after %d warm-up, lowest of %d rounds; ratios against the fp32 row of this run.\n\n",
              static_cast<long long>(fp32[0].examples()), 30, fp32[0].latency_batch(), 5, rounds);
  std::printf("| policy | accuracy %% | bytes on disk | size %% | params | FLOPs %% | latency ms (%d thr) | "
              "speedup (%d thr) | latency ms (%d thr) | speedup (%d thr) |\n",
              fp32[0].threads(), fp32[0].threads(), fp32[1].threads(), fp32[1].threads());
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Row& row : rows) {
    const shrink::v1::Metrics& m1 = row.by_threads[0];
    const shrink::v1::Metrics& m2 = row.by_threads[1];
    std::printf("| %s | %.2f | %lld | %.1f | %lld | %.1f | %.3f | %.2f× | %.3f | %.2f× |\n", row.name.c_str(),
                100 * m1.accuracy(), static_cast<long long>(m1.bytes()), 100.0 * m1.bytes() / fp32[0].bytes(),
                static_cast<long long>(m1.params()), 100.0 * m1.flops() / fp32[0].flops(), m1.latency_ms(),
                fp32[0].latency_ms() / m1.latency_ms(), m2.latency_ms(), fp32[1].latency_ms() / m2.latency_ms());
    if (m1.accuracy() != m2.accuracy()) {
      std::printf("<!-- %s: accuracy with %d threads = %.2f%% -->\n", row.name.c_str(), m2.threads(),
                  100 * m2.accuracy());
    }
  }
  return 0;
}
