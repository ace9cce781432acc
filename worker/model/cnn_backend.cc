#include "worker/model/cnn_backend.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/compress/cnn_compress.h"
#include "worker/data/fashion_mnist.h"
#include "worker/model/describe.h"
#include "worker/model/model_impl.h"
#include "worker/nn/cnn_build.h"
#include "worker/nn/torch_device.h"
#include "worker/checkpoint/safetensors_torch.h"

namespace shrink::worker {
namespace {

// A conv / linear layer: params = weights + bias, FLOPs = weights x output pixels.
shrink::v1::LayerInfo Layer(const std::string& name, const std::string& kind, int64_t in, int64_t out,
                            int64_t kernel_elements, int64_t output_pixels, bool prunable, int64_t input_group) {
  return DescribeLayer(name, kind, in, out, kernel_elements, out * in * kernel_elements + out,
                       out * in * kernel_elements * output_pixels, prunable, input_group);
}

// A fixed batch of synthetic, normalized-looking images (latency does not depend on values).
torch::Tensor SyntheticImages(int64_t batch, int64_t channels) {
  auto generator = at::detail::createCPUGenerator(12345);
  return at::randn({batch, channels, kCnnImageSide, kCnnImageSide}, generator);
}

}  // namespace

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
  SetDescriptionTotals(&description, bytes_);
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

std::map<std::string, torch::Tensor> CnnBackend::LatencyInputs(const EvalOptions& options, int* examples) const {
  *examples = options.latency_batch;
  return {{"images", SyntheticImages(options.latency_batch, checkpoint.widths.in_channels)}};
}

std::function<void()> CnnBackend::LatencyProbe(const EvalOptions& options, int* examples) const {
  torch::Tensor inputs = LatencyInputs(options, examples).at("images").to(device);
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
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
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

}  // namespace shrink::worker
