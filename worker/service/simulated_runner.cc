#include "worker/service/simulated_runner.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/budget.h"
#include "common/blob_upload.h"
#include "common/files.h"
#include "common/policy.h"
#include "common/status.h"
#include "worker/service/task_result.h"

namespace shrink::worker {
namespace {

constexpr double kBaselineAccuracy = 0.90;
constexpr double kBaselineLatencyMs = 10.0;
constexpr int kLatencyBatch = 32;

v1::LayerInfo Layer(const std::string& name, const std::string& kind, int64_t in, int64_t out,
                    int64_t kernel, bool prunable, int64_t input_group, int64_t flops_per_weight) {
  v1::LayerInfo layer;
  layer.set_name(name);
  layer.set_kind(kind);
  layer.set_in_features(in);
  layer.set_out_features(out);
  layer.set_kernel_elements(kernel);
  layer.set_params(out * in * kernel + out);
  layer.set_flops(out * in * kernel * flops_per_weight);
  layer.set_prunable(prunable);
  layer.set_input_group(input_group);
  return layer;
}

// Accuracy lost by one layer's action: grows with the square of the pruned
// fraction and with fewer bits (int8 costs little, 4 bits more).
double LayerDamage(const v1::LayerAction& action) {
  double prune = action.prune();
  int bits = EffectiveBits(action.bits());
  double quant = bits >= 16 ? 0.0 : bits >= 9 ? 0.0005 : bits == 8 ? 0.004 : 0.02 * (9 - bits);
  return 0.35 * prune * prune + quant;
}

v1::Metrics BaselineMetrics(const v1::ModelDescription& model, const char* split) {
  v1::Metrics m;
  m.set_accuracy(kBaselineAccuracy);
  m.set_bytes(model.bytes());
  m.set_params(model.params());
  m.set_flops(model.flops());
  m.set_latency_ms(kBaselineLatencyMs);
  m.set_latency_batch(kLatencyBatch);
  m.set_threads(1);
  m.set_split(split);
  m.set_examples(split == std::string("test") ? 10000 : 6000);
  return m;
}

int64_t FilesBytes(const v1::Task& task) {
  int64_t bytes = 0;
  for (const auto& f : task.model_files()) bytes += f.size();
  return bytes;
}

}  // namespace

v1::ModelDescription SimulatedDescription(int64_t bytes) {
  v1::ModelDescription model;
  model.set_model_type("shrink-cnn");
  *model.add_layers() = Layer("conv1", "conv2d", 1, 32, 9, true, 1, 28 * 28);
  *model.add_layers() = Layer("conv2", "conv2d", 32, 64, 9, true, 1, 14 * 14);
  *model.add_layers() = Layer("fc1", "linear", 3136, 128, 1, true, 49, 1);
  *model.add_layers() = Layer("fc2", "linear", 128, 10, 1, false, 1, 1);
  int64_t params = 0, flops = 0;
  for (const auto& layer : model.layers()) {
    params += layer.params();
    flops += layer.flops();
  }
  model.set_params(params);
  model.set_flops(flops);
  // At least the fp32 weights plus a small header, whatever was uploaded.
  model.set_bytes(std::max<int64_t>(bytes, 4 * params + 1024));
  for (auto& layer : *model.mutable_layers()) {
    layer.set_latency_share(static_cast<double>(layer.flops()) / static_cast<double>(flops));
  }
  return model;
}

absl::StatusOr<v1::Evaluation> SimulatedEvaluation(const v1::ModelDescription& model,
                                                   const v1::Policy& policy) {
  SHRINK_ASSIGN_OR_RETURN(std::vector<v1::LayerAction> actions, ResolvePolicy(policy, model));
  double size_ratio = agent::EstimateSizeRatio(model, actions);
  // Multiply-adds left: a layer keeps (1 - its prune) of its outputs and
  // (1 - the previous layer's prune) of its inputs.
  double flops_left = 0, damage = 0;
  for (int i = 0; i < model.layers_size(); ++i) {
    double keep_out = 1 - actions[i].prune();
    double keep_in = i > 0 ? 1 - actions[i - 1].prune() : 1.0;
    flops_left += static_cast<double>(model.layers(i).flops()) * keep_out * keep_in;
    double share = static_cast<double>(model.layers(i).params()) / static_cast<double>(model.params());
    damage += (0.5 + share) * LayerDamage(actions[i]);
  }
  double flops_ratio = model.flops() > 0 ? flops_left / static_cast<double>(model.flops()) : 1.0;
  double retention = std::clamp(1.0 - damage, 0.05, 1.0);
  v1::Metrics base = BaselineMetrics(model, "validation");
  v1::Metrics cand = base;
  cand.set_accuracy(kBaselineAccuracy * retention);
  cand.set_bytes(static_cast<int64_t>(std::llround(static_cast<double>(model.bytes()) * size_ratio)));
  cand.set_flops(static_cast<int64_t>(flops_left));
  cand.set_params(static_cast<int64_t>(static_cast<double>(model.params()) * flops_ratio));
  // A fixed 20% of the forward pass does not shrink with the weights.
  cand.set_latency_ms(kBaselineLatencyMs * (0.2 + 0.8 * flops_ratio));
  v1::Evaluation e;
  *e.mutable_candidate() = cand;
  *e.mutable_baseline() = base;
  e.set_retention(retention);
  e.set_size_ratio(size_ratio);
  e.set_speedup(base.latency_ms() / cand.latency_ms());
  e.set_flops_ratio(flops_ratio);
  e.set_params_ratio(static_cast<double>(cand.params()) / static_cast<double>(model.params()));
  return e;
}

SimulatedRunner::SimulatedRunner(SimulateOptions options, std::string work_dir)
    : options_(options), work_dir_(std::move(work_dir)) {}

bool SimulatedRunner::ShouldFail(const std::string& task_id) {
  if (options_.fail_rate <= 0) return false;
  if (options_.fail_rate >= 1) return true;
  int attempt;
  {
    std::lock_guard<std::mutex> lock(mu_);
    attempt = attempts_[task_id]++;
  }
  size_t h = std::hash<std::string>()(absl::StrCat(task_id, "#", attempt));
  return static_cast<double>(h % 1000000) / 1e6 < options_.fail_rate;
}

v1::TaskResult SimulatedRunner::Run(const v1::Task& task, v1::WorkerPool::StubInterface* stub,
                                    const RecallFlag* recalled) {
  absl::Time start = absl::Now();
  // The simulated work, in slices of at most 1 s: a recall ends it within a second, and a task
  // of a second or less (the load bench) sleeps once, as it did before recalls.
  const absl::Time end = start + absl::Seconds(std::max(0.0, options_.seconds));
  for (absl::Time now = start; now < end && CheckNotRecalled(recalled).ok(); now = absl::Now()) {
    absl::SleepFor(std::min(end - now, absl::Seconds(1)));
  }
  return RunToResult(task, start, [&]() -> absl::StatusOr<v1::TaskResult> {
    SHRINK_RETURN_IF_ERROR(CheckNotRecalled(recalled));
    return RunOrThrow(task, stub);
  });
}

absl::StatusOr<v1::TaskResult> SimulatedRunner::RunOrThrow(const v1::Task& task,
                                                           v1::WorkerPool::StubInterface* stub) {
  v1::ModelDescription model = SimulatedDescription(FilesBytes(task));
  v1::TaskResult result;
  if (task.kind() == v1::Task::DESCRIBE) {
    *result.mutable_description() = model;
    v1::Metrics base = BaselineMetrics(model, "validation");
    *result.mutable_evaluation()->mutable_candidate() = base;
    *result.mutable_evaluation()->mutable_baseline() = base;
    return result;
  }
  if (task.kind() == v1::Task::EVALUATE && ShouldFail(task.task_id())) {
    throw std::runtime_error("simulated pass failure (--simulate-fail-rate)");
  }
  SHRINK_ASSIGN_OR_RETURN(*result.mutable_evaluation(), SimulatedEvaluation(model, task.policy()));
  if (task.kind() != v1::Task::FINALIZE) return result;
  // The artifact says what it is: a policy and its simulated metrics, no model.
  const char* split = "test";
  *result.mutable_evaluation()->mutable_baseline() = BaselineMetrics(model, split);
  result.mutable_evaluation()->mutable_candidate()->set_split(split);
  std::string policy_json, eval_json;
  if (!google::protobuf::util::MessageToJsonString(task.policy(), &policy_json).ok() ||
      !google::protobuf::util::MessageToJsonString(result.evaluation(), &eval_json).ok()) {
    return absl::InternalError("cannot write the simulated artifact as JSON");
  }
  SHRINK_RETURN_IF_ERROR(MakeDirs(work_dir_));
  std::string path = absl::StrCat(work_dir_, "/simulated-", task.task_id(), "-", artifacts_++, ".json");
  SHRINK_RETURN_IF_ERROR(WriteFileAtomic(
      path, absl::StrCat("{\"simulated\": true, \"job\": \"", task.job_id(), "\", \"policy\": ",
                         policy_json, ", \"evaluation\": ", eval_json, "}\n")));
  SHRINK_ASSIGN_OR_RETURN(v1::FileRef ref, DescribeFile(path, "simulated.json"));
  absl::Status uploaded = UploadFile(stub, path, ref);
  RemoveAll(path);
  SHRINK_RETURN_IF_ERROR(uploaded);
  *result.add_artifact_files() = ref;
  return result;
}

}  // namespace shrink::worker
