#include "worker/eval/evaluate.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/median.h"
#include "common/policy.h"
#include "common/status.h"
#include "worker/eval/compare.h"
#include "worker/model/guarded.h"
#include "worker/model/model_impl.h"
#include "worker/nn/device.h"
#include "worker/nn/torch_device.h"

namespace shrink::worker {
namespace {

double Millis(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

absl::Status ValidateEvalOptions(const EvalOptions& options) {
  if (options.latency_batch < 1 || options.text_latency_batch < 1 || options.sequence_length < 2 ||
      options.timed_runs < 1 || options.warmup_runs < 0 || options.max_examples < 0) {
    return absl::InvalidArgumentError(
        "EvalOptions: latency batches and timed_runs must be >= 1, sequence_length >= 2, warmup_runs and "
        "max_examples >= 0");
  }
  return absl::OkStatus();
}

// A forward pass to time and the device it runs on.
struct TimedProbe {
  std::function<void()> run;
  torch::Device device;
};

// Warms every probe up, then times them in alternating passes; each one's median in ms.
// CANCELLED between passes once options.recalled is set.
absl::StatusOr<std::vector<double>> TimeProbes(const std::vector<TimedProbe>& probes, const EvalOptions& options) {
  for (const TimedProbe& p : probes) {
    for (int i = 0; i < options.warmup_runs; ++i) {
      SHRINK_RETURN_IF_ERROR(CheckNotRecalled(options.recalled));
      p.run();
    }
    SynchronizeDevice(p.device);
  }
  std::vector<std::vector<double>> times_ms(probes.size());
  for (int i = 0; i < options.timed_runs; ++i) {
    SHRINK_RETURN_IF_ERROR(CheckNotRecalled(options.recalled));
    for (size_t k = 0; k < probes.size(); ++k) {
      auto start = std::chrono::steady_clock::now();
      probes[k].run();
      SynchronizeDevice(probes[k].device);  // a GPU returns before its kernels ran: wait for them
      times_ms[k].push_back(Millis(start));
    }
  }
  std::vector<double> medians;
  for (auto& t : times_ms) medians.push_back(Median(std::move(t)));
  return medians;
}

}  // namespace

absl::StatusOr<LatencyPair> TimeInterleaved(const Model& first, const Model& second, const EvalOptions& options) {
  if (!first.impl || !first.impl->backend || !second.impl || !second.impl->backend) {
    return absl::FailedPreconditionError("TimeInterleaved on an empty model");
  }
  SHRINK_RETURN_IF_ERROR(ValidateEvalOptions(options));
  return Guarded("timing models", [&]() -> absl::StatusOr<LatencyPair> {
    LatencyPair pair;
    pair.threads = ConfigureTorch(options.threads);
    int batch = 0;
    std::vector<TimedProbe> probes = {{first.impl->backend->LatencyProbe(options, &batch), first.impl->backend->device},
                                      {second.impl->backend->LatencyProbe(options, &batch), second.impl->backend->device}};
    SHRINK_ASSIGN_OR_RETURN(std::vector<double> medians, TimeProbes(probes, options));
    pair.first_ms = medians[0];
    pair.second_ms = medians[1];
    return pair;
  });
}

absl::StatusOr<shrink::v1::Metrics> Evaluate(const Model& model, const ImageDataset& data, const std::string& split,
                                             const EvalOptions& options) {
  TaskData task;
  task.name = "fashion-mnist";
  // A non-owning handle: `data` outlives this call.
  task.images = std::shared_ptr<const ImageDataset>(&data, [](const ImageDataset*) {});
  return Evaluate(model, task, split, options);
}

absl::StatusOr<shrink::v1::Metrics> Evaluate(const Model& model, const TaskData& data, const std::string& split,
                                             const EvalOptions& options) {
  if (!model.impl || !model.impl->backend) return absl::FailedPreconditionError("Evaluate on an empty model");
  SHRINK_RETURN_IF_ERROR(ValidateEvalOptions(options));
  return Guarded("evaluating model", [&]() -> absl::StatusOr<shrink::v1::Metrics> {
    // Every evaluation states its thread count: latency figures are only comparable that way.
    const int threads = ConfigureTorch(options.threads);
    shrink::v1::Metrics metrics;
    if (!data.empty()) {
      SHRINK_ASSIGN_OR_RETURN(Quality quality, model.impl->backend->Measure(data, split, options.max_examples, options.recalled));
      metrics.set_accuracy(quality.accuracy);
      metrics.set_perplexity(quality.perplexity);
      metrics.set_examples(quality.examples);
      metrics.set_split(split);
    }
    int batch = 0;
    std::function<void()> probe = model.impl->backend->LatencyProbe(options, &batch);
    if (options.time_latency) {
      SHRINK_ASSIGN_OR_RETURN(std::vector<double> medians, TimeProbes({{probe, model.impl->backend->device}}, options));
      metrics.set_latency_ms(medians[0]);
    }
    metrics.set_latency_batch(batch);
    metrics.set_threads(threads);

    // Bytes are measured on disk, not estimated: save, sum the file sizes, clean up.
    SHRINK_ASSIGN_OR_RETURN(std::string dir, MakeTempDir("shrink-eval-"));
    absl::Status saved = model.Save(dir);
    absl::StatusOr<int64_t> bytes = saved.ok() ? DirectoryBytes(dir) : absl::StatusOr<int64_t>(saved);
    RemoveAll(dir);
    if (!bytes.ok()) return bytes.status();
    metrics.set_bytes(*bytes);

    const shrink::v1::ModelDescription description = model.Describe();
    metrics.set_params(description.params());
    metrics.set_flops(description.flops());
    return metrics;
  });
}

absl::StatusOr<shrink::v1::ModelDescription> Profile(const Model& model, const TaskData& data, const EvalOptions& eval,
                                                     const ProfileOptions& options) {
  if (!model.impl || !model.impl->backend) return absl::FailedPreconditionError("Profile on an empty model");
  if (options.runs < 1 || options.calibration_examples < 1) {
    return absl::InvalidArgumentError("ProfileOptions: runs and calibration_examples must be >= 1");
  }
  return Guarded("profiling model", [&]() -> absl::StatusOr<shrink::v1::ModelDescription> {
    ConfigureTorch(eval.threads);
    shrink::v1::ModelDescription description = model.Describe();
    // Latency shares: per-layer time of a few forward passes after one warm-up pass.
    std::vector<double> total(description.layers_size(), 0.0);
    model.impl->backend->LayerTimes(eval);
    for (int run = 0; run < options.runs; ++run) {
      SHRINK_RETURN_IF_ERROR(CheckNotRecalled(eval.recalled));
      std::vector<double> ms = model.impl->backend->LayerTimes(eval);
      for (size_t i = 0; i < total.size() && i < ms.size(); ++i) total[i] += ms[i];
    }
    double sum = 0;
    for (double ms : total) sum += ms;
    for (int i = 0; i < description.layers_size(); ++i) {
      description.mutable_layers(i)->set_latency_share(sum > 0 ? total[i] / sum : 0.0);
    }
    if (data.empty() || !model.impl->backend->IsUncompressed()) return description;
    // Sensitivity: the same calibration subset, one layer compressed hard at a time.
    SHRINK_ASSIGN_OR_RETURN(Quality baseline,
                            model.impl->backend->Measure(data, "validation", options.calibration_examples, eval.recalled));
    for (int i = 0; i < description.layers_size(); ++i) {
      SHRINK_RETURN_IF_ERROR(CheckNotRecalled(eval.recalled));
      std::vector<shrink::v1::LayerAction> actions;
      for (const auto& layer : description.layers()) {
        shrink::v1::LayerAction action;
        action.set_name(layer.name());
        action.set_bits(kFullPrecisionBits);
        actions.push_back(action);
      }
      const shrink::v1::LayerInfo& layer = description.layers(i);
      if (layer.prunable()) {
        actions[i].set_prune(kMaxPrune);
      } else {
        actions[i].set_bits(8);
      }
      SHRINK_ASSIGN_OR_RETURN(auto hard, model.impl->backend->Compress(actions, "", ApplyOptions()));
      SHRINK_ASSIGN_OR_RETURN(Quality quality, hard->Measure(data, "validation", options.calibration_examples, eval.recalled));
      description.mutable_layers(i)->set_sensitivity(std::max(0.0, 1.0 - Retention(quality.accuracy, quality.perplexity, baseline.accuracy, baseline.perplexity)));
    }
    return description;
  });
}

}  // namespace shrink::worker
