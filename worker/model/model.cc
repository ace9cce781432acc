// The facade: every torch exception stops here and becomes an absl::Status.
// Family-specific work lives in the backends (CNN here, transformers in
// transformer_backend.cc); measuring (latency, bytes, profile) is shared.
#include "worker/model/model.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/policy.h"
#include "common/status.h"
#include "worker/nn/cnn.h"
#include "worker/checkpoint/cnn_checkpoint.h"
#include "worker/checkpoint/safetensors_torch.h"
#include "worker/compress/cnn_compress.h"
#include "worker/data/fashion_mnist.h"
#include "worker/nn/int8_linear.h"
#include "worker/model/model_impl.h"
#include "worker/nn/torch_device.h"
#include "worker/checkpoint/transformer_config.h"

namespace shrink::worker {

namespace {

// Runs `body`, turning exceptions (c10::Error included) into a status that names `what`.
template <typename Body>
auto Guarded(const std::string& what, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  }
}

shrink::v1::LayerInfo Layer(const std::string& name, const std::string& kind, int64_t in, int64_t out,
                            int64_t kernel_elements, int64_t output_pixels, bool prunable, int64_t input_group) {
  shrink::v1::LayerInfo layer;
  layer.set_name(name);
  layer.set_kind(kind);
  layer.set_in_features(in);
  layer.set_out_features(out);
  layer.set_kernel_elements(kernel_elements);
  layer.set_params(out * in * kernel_elements + out);
  layer.set_flops(out * in * kernel_elements * output_pixels);
  layer.set_prunable(prunable);
  layer.set_input_group(input_group);
  return layer;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

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

// A fixed batch of synthetic, normalized-looking images (latency does not depend on values).
torch::Tensor SyntheticImages(int64_t batch, int64_t channels) {
  auto generator = at::detail::createCPUGenerator(12345);
  return at::randn({batch, channels, kCnnImageSide, kCnnImageSide}, generator);
}

// Retention of `candidate` against `baseline`: accuracy ratio, or baseline / candidate perplexity.
double Retention(const Quality& candidate, const Quality& baseline) {
  if (baseline.perplexity > 0) return candidate.perplexity > 0 ? baseline.perplexity / candidate.perplexity : 0.0;
  return baseline.accuracy > 0 ? candidate.accuracy / baseline.accuracy : 0.0;
}

}  // namespace

// ---------------------------------------------------------------- CNN backend

CnnBackend* Model::Impl::cnn() const { return dynamic_cast<CnnBackend*>(backend.get()); }

absl::StatusOr<std::unique_ptr<CnnBackend>> MakeCnnBackend(CnnCheckpoint checkpoint, torch::Device device) {
  auto backend = std::make_unique<CnnBackend>();
  SHRINK_ASSIGN_OR_RETURN(backend->net, BuildCnn(checkpoint, device));
  backend->device = device;
  SHRINK_ASSIGN_OR_RETURN(std::string weights, CnnSafetensorsBytes(checkpoint));
  backend->bytes_ = static_cast<int64_t>(weights.size() + CnnConfigJson(checkpoint).size());
  backend->checkpoint = std::move(checkpoint);
  return backend;
}

shrink::v1::ModelDescription CnnBackend::Describe() const {
  shrink::v1::ModelDescription description;
  const CnnWidths& w = checkpoint.widths;
  const int64_t kernel = kCnnKernel * kCnnKernel;
  const int64_t half_side = kCnnImageSide / 2;
  description.set_model_type(kCnnModelType);
  *description.add_layers() =
      Layer("conv1", "conv2d", w.in_channels, w.conv1, kernel, kCnnImageSide * kCnnImageSide, true, 1);
  *description.add_layers() = Layer("conv2", "conv2d", w.conv1, w.conv2, kernel, half_side * half_side, true, 1);
  *description.add_layers() = Layer("fc1", "linear", w.conv2 * kCnnFeaturePixels, w.fc1, 1, 1, true, kCnnFeaturePixels);
  *description.add_layers() = Layer("fc2", "linear", w.fc1, w.classes, 1, 1, false, 1);
  int64_t params = 0, flops = 0;
  for (const auto& layer : description.layers()) {
    params += layer.params();
    flops += layer.flops();
  }
  description.set_params(params);
  description.set_flops(flops);
  description.set_bytes(bytes_);
  return description;
}

absl::StatusOr<std::unique_ptr<ModelBackend>> CnnBackend::Compress(const std::vector<shrink::v1::LayerAction>& actions,
                                                                   const std::string& policy_json,
                                                                   const ApplyOptions& options) const {
  // Calibration (GPTQ and activation importance): the first training images.
  torch::Tensor images;
  if (options.data.images) {
    auto split = FindSplit(*options.data.images, "train");
    if (split.ok() && (*split)->images.size(0) > 0) {
      images = (*split)->images.narrow(0, 0, std::min<int64_t>(kCalibrationExamples, (*split)->images.size(0)));
    }
  }
  CnnDistillation distill;
  distill.options = options.distill;
  if (options.data.images && options.distill.max_steps > 0) {
    auto split = FindSplit(*options.data.images, "train");
    if (split.ok() && (*split)->images.size(0) > 0) {
      distill.images = (*split)->images;
      distill.labels = (*split)->labels;
    }
  }
  SHRINK_ASSIGN_OR_RETURN(CnnCheckpoint compressed, CompressCnn(checkpoint, actions, images, distill, options.criterion));
  compressed.policy_json = policy_json;
  // Distillation can diverge; such a candidate fails here rather than being scored.
  SHRINK_RETURN_IF_ERROR(CheckAllFinite(compressed.tensors, "the compressed model's tensor "));
  SHRINK_ASSIGN_OR_RETURN(auto backend, MakeCnnBackend(std::move(compressed), device));
  return std::unique_ptr<ModelBackend>(std::move(backend));
}

absl::Status CnnBackend::Save(const std::string& dir) const { return WriteCnnCheckpoint(checkpoint, dir); }

absl::StatusOr<Quality> CnnBackend::Measure(const TaskData& data, const std::string& split_name,
                                            int64_t max_examples, const RecallFlag* recalled) const {
  if (!data.images) {
    return absl::InvalidArgumentError(absl::StrCat("the CNN is measured on images; task ", data.name, " is text"));
  }
  SHRINK_ASSIGN_OR_RETURN(const ImageDataset::Impl::Split* split, FindSplit(*data.images, split_name));
  if (split->labels.size(0) == 0) return absl::InvalidArgumentError(absl::StrCat("split ", split_name, " is empty"));
  torch::NoGradGuard no_grad;
  Cnn module = net;  // a handle to the shared module, which stays in eval mode
  TORCH_CHECK(!module->is_training(), "model is not in eval mode");
  // In chunks of a few batches, so that a recall stops it within one chunk.
  constexpr int64_t kChunk = 2000;
  const int64_t total = max_examples > 0 ? std::min(max_examples, split->labels.size(0)) : split->labels.size(0);
  int64_t correct = 0;
  for (int64_t start = 0; start < total; start += kChunk) {
    SHRINK_RETURN_IF_ERROR(CheckNotRecalled(recalled));
    const int64_t count = std::min(kChunk, total - start);
    auto [accuracy, examples] =
        CnnAccuracy(module, split->images.narrow(0, start, count), split->labels.narrow(0, start, count));
    correct += std::llround(accuracy * static_cast<double>(examples));
  }
  Quality quality;
  quality.accuracy = static_cast<double>(correct) / static_cast<double>(total);
  quality.examples = total;
  return quality;
}

std::function<void()> CnnBackend::LatencyProbe(const EvalOptions& options, int* examples) const {
  *examples = options.latency_batch;
  torch::Tensor inputs = SyntheticImages(options.latency_batch, checkpoint.widths.in_channels).to(device);
  Cnn module = net;
  return [module, inputs]() mutable {
    torch::NoGradGuard no_grad;
    module->forward(inputs);
  };
}

std::vector<double> CnnBackend::LayerTimes(const EvalOptions& options) const {
  torch::NoGradGuard no_grad;
  torch::Tensor x = SyntheticImages(options.latency_batch, checkpoint.widths.in_channels).to(device);
  Cnn m = net;
  std::vector<double> ms(4, 0.0);
  // Each stage's kernels must have run before its time is read (GPUs queue them).
  auto stop = [this](std::chrono::steady_clock::time_point start) {
    SynchronizeDevice(device);
    return Millis(start);
  };
  SynchronizeDevice(device);
  auto start = std::chrono::steady_clock::now();
  x = torch::max_pool2d(torch::relu(m->conv1(x)), 2);
  ms[0] = stop(start);
  start = std::chrono::steady_clock::now();
  x = torch::max_pool2d(torch::relu(m->conv2(x)), 2).flatten(1);
  ms[1] = stop(start);
  start = std::chrono::steady_clock::now();
  x = torch::relu(m->fc1 ? m->fc1(x) : m->fc1_int8->Forward(x));
  ms[2] = stop(start);
  start = std::chrono::steady_clock::now();
  x = m->fc2 ? m->fc2(x) : m->fc2_int8->Forward(x);
  ms[3] = stop(start);
  return ms;
}

// ---------------------------------------------------------------- facade

std::unique_ptr<Model> WrapBackend(std::unique_ptr<ModelBackend> backend) {
  auto model = std::make_unique<Model>();
  model->impl = std::make_unique<Model::Impl>();
  model->impl->backend = std::move(backend);
  return model;
}

Model::Model() = default;
Model::~Model() = default;

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& dir, const std::string& device_name) {
  SHRINK_ASSIGN_OR_RETURN(const torch::Device device, ParseDevice(device_name));
  return Guarded(absl::StrCat("loading model from ", dir), [&]() -> absl::StatusOr<std::unique_ptr<Model>> {
    // model_type picks the family; each reader validates the rest.
    const std::string config_path = absl::StrCat(dir, "/", kModelConfigFile);
    if (PathExists(config_path)) {
      SHRINK_ASSIGN_OR_RETURN(std::string text, ReadFile(config_path));
      nlohmann::json config = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (config.is_object() && config.contains("model_type") && config["model_type"].is_string() &&
          IsTransformerModelType(config["model_type"].get<std::string>())) {
        SHRINK_ASSIGN_OR_RETURN(auto backend, LoadTransformerBackend(dir, device));
        return WrapBackend(std::move(backend));
      }
      if (config.is_object() && config.contains("model_type") && config["model_type"].is_string() &&
          config["model_type"] != kCnnModelType) {
        return absl::InvalidArgumentError(absl::StrCat(config_path, ": unsupported model_type \"",
                                                       config["model_type"].get<std::string>(), "\" (supported: ",
                                                       kCnnModelType, ", bert, distilbert, roberta, gpt2)"));
      }
    }
    SHRINK_ASSIGN_OR_RETURN(CnnCheckpoint checkpoint, ReadCnnCheckpoint(dir));
    SHRINK_ASSIGN_OR_RETURN(auto backend, MakeCnnBackend(std::move(checkpoint), device));
    return WrapBackend(std::move(backend));
  });
}

shrink::v1::ModelDescription Model::Describe() const {
  if (!impl || !impl->backend) return shrink::v1::ModelDescription();
  return impl->backend->Describe();
}

std::string Model::ModelType() const { return Describe().model_type(); }

std::string Model::Device() const { return impl && impl->backend ? DeviceName(impl->backend->device) : "cpu"; }

absl::StatusOr<std::unique_ptr<Model>> Model::Apply(const shrink::v1::Policy& policy, const ApplyOptions& options) const {
  if (!impl || !impl->backend) return absl::FailedPreconditionError("Apply on an empty model");
  if (!impl->backend->IsUncompressed()) {
    return absl::FailedPreconditionError(
        "this model is already compressed; apply policies to the uncompressed model it came from");
  }
  return Guarded("applying policy", [&]() -> absl::StatusOr<std::unique_ptr<Model>> {
    SHRINK_ASSIGN_OR_RETURN(std::vector<shrink::v1::LayerAction> actions, ResolvePolicy(policy, Describe()));
    SHRINK_ASSIGN_OR_RETURN(auto backend, impl->backend->Compress(actions, PolicyToJson(policy), options));
    return WrapBackend(std::move(backend));
  });
}

absl::Status Model::Save(const std::string& dir) const {
  if (!impl || !impl->backend) return absl::FailedPreconditionError("Save on an empty model");
  return Guarded(absl::StrCat("saving model to ", dir), [&] { return impl->backend->Save(dir); });
}

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

absl::StatusOr<shrink::v1::Metrics> Model::Evaluate(const ImageDataset& data, const std::string& split,
                                                    const EvalOptions& options) const {
  TaskData task;
  task.name = "fashion-mnist";
  // A non-owning handle: `data` outlives this call.
  task.images = std::shared_ptr<const ImageDataset>(&data, [](const ImageDataset*) {});
  return Evaluate(task, split, options);
}

absl::StatusOr<shrink::v1::Metrics> Model::Evaluate(const TaskData& data, const std::string& split,
                                                    const EvalOptions& options) const {
  if (!impl || !impl->backend) return absl::FailedPreconditionError("Evaluate on an empty model");
  SHRINK_RETURN_IF_ERROR(ValidateEvalOptions(options));
  return Guarded("evaluating model", [&]() -> absl::StatusOr<shrink::v1::Metrics> {
    // Every evaluation states its thread count: latency figures are only comparable that way.
    const int threads = ConfigureTorch(options.threads);
    shrink::v1::Metrics metrics;
    if (!data.empty()) {
      SHRINK_ASSIGN_OR_RETURN(Quality quality, impl->backend->Measure(data, split, options.max_examples, options.recalled));
      metrics.set_accuracy(quality.accuracy);
      metrics.set_perplexity(quality.perplexity);
      metrics.set_examples(quality.examples);
      metrics.set_split(split);
    }
    int batch = 0;
    std::function<void()> probe = impl->backend->LatencyProbe(options, &batch);
    if (options.time_latency) {
      SHRINK_ASSIGN_OR_RETURN(std::vector<double> medians, TimeProbes({{probe, impl->backend->device}}, options));
      metrics.set_latency_ms(medians[0]);
    }
    metrics.set_latency_batch(batch);
    metrics.set_threads(threads);

    // Bytes are measured on disk, not estimated: save, sum the file sizes, clean up.
    SHRINK_ASSIGN_OR_RETURN(std::string dir, MakeTempDir("shrink-eval-"));
    absl::Status saved = Save(dir);
    absl::StatusOr<int64_t> bytes = saved.ok() ? DirectoryBytes(dir) : absl::StatusOr<int64_t>(saved);
    RemoveAll(dir);
    if (!bytes.ok()) return bytes.status();
    metrics.set_bytes(*bytes);

    const shrink::v1::ModelDescription description = Describe();
    metrics.set_params(description.params());
    metrics.set_flops(description.flops());
    return metrics;
  });
}

absl::StatusOr<shrink::v1::ModelDescription> Model::Profile(const TaskData& data, const EvalOptions& eval,
                                                            const ProfileOptions& options) const {
  if (!impl || !impl->backend) return absl::FailedPreconditionError("Profile on an empty model");
  if (options.runs < 1 || options.calibration_examples < 1) {
    return absl::InvalidArgumentError("ProfileOptions: runs and calibration_examples must be >= 1");
  }
  return Guarded("profiling model", [&]() -> absl::StatusOr<shrink::v1::ModelDescription> {
    ConfigureTorch(eval.threads);
    shrink::v1::ModelDescription description = Describe();
    // Latency shares: per-layer time of a few forward passes after one warm-up pass.
    std::vector<double> total(description.layers_size(), 0.0);
    impl->backend->LayerTimes(eval);
    for (int run = 0; run < options.runs; ++run) {
      SHRINK_RETURN_IF_ERROR(CheckNotRecalled(eval.recalled));
      std::vector<double> ms = impl->backend->LayerTimes(eval);
      for (size_t i = 0; i < total.size() && i < ms.size(); ++i) total[i] += ms[i];
    }
    double sum = 0;
    for (double ms : total) sum += ms;
    for (int i = 0; i < description.layers_size(); ++i) {
      description.mutable_layers(i)->set_latency_share(sum > 0 ? total[i] / sum : 0.0);
    }
    if (data.empty() || !impl->backend->IsUncompressed()) return description;
    // Sensitivity: the same calibration subset, one layer compressed hard at a time.
    SHRINK_ASSIGN_OR_RETURN(Quality baseline,
                            impl->backend->Measure(data, "validation", options.calibration_examples, eval.recalled));
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
      SHRINK_ASSIGN_OR_RETURN(auto hard, impl->backend->Compress(actions, "", ApplyOptions()));
      SHRINK_ASSIGN_OR_RETURN(Quality quality, hard->Measure(data, "validation", options.calibration_examples, eval.recalled));
      description.mutable_layers(i)->set_sensitivity(std::max(0.0, 1.0 - Retention(quality, baseline)));
    }
    return description;
  });
}

absl::Status InitModel(const std::string& arch, const std::string& preset, uint64_t seed, const std::string& out_dir) {
  return Guarded(absl::StrCat("initialising ", arch, " ", preset), [&]() -> absl::Status {
    if (arch == "cnn") {
      if (preset != "reference") {
        return absl::InvalidArgumentError(absl::StrCat("unknown cnn preset \"", preset, "\" (reference)"));
      }
      torch::manual_seed(seed);
      Cnn net;
      return WriteCnnCheckpoint(CheckpointFromModule(net), out_dir);
    }
    return InitTransformer(arch, preset, seed, out_dir);
  });
}

int ConfigureTorch(int threads) {
  const int wanted = threads > 0 ? threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  if (at::get_num_threads() != wanted) at::set_num_threads(wanted);
  (void)UseOnednnEngine();  // builds without ONEDNN fail later, where int8 is actually needed
  return at::get_num_threads();
}

}  // namespace shrink::worker
