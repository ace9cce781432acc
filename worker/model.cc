// The facade: every torch exception stops here and becomes an absl::Status.
#include "worker/model.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/policy.h"
#include "common/status.h"
#include "worker/cnn.h"
#include "worker/cnn_checkpoint.h"
#include "worker/cnn_compress.h"
#include "worker/fashion_mnist.h"
#include "worker/int8_linear.h"
#include "worker/model_impl.h"

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

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> MakeModel(CnnCheckpoint checkpoint) {
  auto model = std::make_unique<Model>();
  model->impl = std::make_unique<Model::Impl>();
  SHRINK_ASSIGN_OR_RETURN(model->impl->net, BuildCnn(checkpoint));
  SHRINK_ASSIGN_OR_RETURN(std::string weights, CnnSafetensorsBytes(checkpoint));
  model->impl->bytes = static_cast<int64_t>(weights.size() + CnnConfigJson(checkpoint).size());
  model->impl->checkpoint = std::move(checkpoint);
  return model;
}

Model::Model() = default;
Model::~Model() = default;

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& dir) {
  return Guarded(absl::StrCat("loading model from ", dir), [&]() -> absl::StatusOr<std::unique_ptr<Model>> {
    SHRINK_ASSIGN_OR_RETURN(CnnCheckpoint checkpoint, ReadCnnCheckpoint(dir));
    return MakeModel(std::move(checkpoint));
  });
}

shrink::v1::ModelDescription Model::Describe() const {
  shrink::v1::ModelDescription description;
  if (!impl) return description;
  const CnnWidths& w = impl->checkpoint.widths;
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
  description.set_bytes(impl->bytes);
  return description;
}

absl::StatusOr<std::unique_ptr<Model>> Model::Apply(const shrink::v1::Policy& policy) const {
  if (!impl) return absl::FailedPreconditionError("Apply on an empty model");
  if (!impl->checkpoint.IsUncompressed()) {
    return absl::FailedPreconditionError(
        "this model is already compressed; apply policies to the uncompressed model it came from");
  }
  return Guarded("applying policy", [&]() -> absl::StatusOr<std::unique_ptr<Model>> {
    SHRINK_ASSIGN_OR_RETURN(std::vector<shrink::v1::LayerAction> actions, ResolvePolicy(policy, Describe()));
    SHRINK_ASSIGN_OR_RETURN(CnnCheckpoint compressed, CompressCnn(impl->checkpoint, actions));
    compressed.policy_json = PolicyToJson(policy);
    return MakeModel(std::move(compressed));
  });
}

absl::Status Model::Save(const std::string& dir) const {
  if (!impl) return absl::FailedPreconditionError("Save on an empty model");
  return Guarded(absl::StrCat("saving model to ", dir), [&] { return WriteCnnCheckpoint(impl->checkpoint, dir); });
}

absl::StatusOr<shrink::v1::Metrics> Model::Evaluate(const ImageDataset& data, const std::string& split_name,
                                                    const EvalOptions& options) const {
  if (!impl) return absl::FailedPreconditionError("Evaluate on an empty model");
  if (options.latency_batch < 1 || options.timed_runs < 1 || options.warmup_runs < 0 || options.max_examples < 0) {
    return absl::InvalidArgumentError(
        "EvalOptions: latency_batch and timed_runs must be >= 1, warmup_runs and max_examples >= 0");
  }
  SHRINK_ASSIGN_OR_RETURN(const ImageDataset::Impl::Split* split, FindSplit(data, split_name));
  if (split->labels.size(0) == 0) return absl::InvalidArgumentError(absl::StrCat("split ", split_name, " is empty"));
  return Guarded("evaluating model", [&]() -> absl::StatusOr<shrink::v1::Metrics> {
    // Every evaluation states its thread count: latency figures are only comparable that way.
    const int threads = ConfigureTorch(options.threads);
    torch::NoGradGuard no_grad;
    Cnn net = impl->net;  // a handle to the shared module, which stays in eval mode
    TORCH_CHECK(!net->is_training(), "model is not in eval mode");
    shrink::v1::Metrics metrics;
    auto [accuracy, examples] = CnnAccuracy(net, split->images, split->labels, options.max_examples);
    metrics.set_accuracy(accuracy);
    metrics.set_examples(examples);

    const int64_t batch = std::min<int64_t>(options.latency_batch, split->images.size(0));
    torch::Tensor inputs = split->images.narrow(0, 0, batch).contiguous();
    for (int i = 0; i < options.warmup_runs; ++i) net->forward(inputs);
    std::vector<double> times_ms;
    for (int i = 0; i < options.timed_runs; ++i) {
      auto start = std::chrono::steady_clock::now();
      torch::Tensor logits = net->forward(inputs);
      times_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    metrics.set_latency_ms(Median(times_ms));
    metrics.set_latency_batch(static_cast<int32_t>(batch));
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
    metrics.set_split(split_name);
    return metrics;
  });
}

int ConfigureTorch(int threads) {
  const int wanted = threads > 0 ? threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  if (at::get_num_threads() != wanted) at::set_num_threads(wanted);
  (void)UseOnednnEngine();  // builds without ONEDNN fail later, where int8 is actually needed
  return at::get_num_threads();
}

}  // namespace shrink::worker
