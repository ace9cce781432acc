#include "worker/compress/cnn_compress.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/policy.h"
#include "common/status.h"
#include "worker/compress/distill/cnn_distill.h"
#include "worker/compress/distill/distill.h"
#include "worker/compress/quantize/groupwise_quantize.h"
#include "worker/checkpoint/packed_weight.h"
#include "worker/nn/int8_linear.h"
#include "worker/checkpoint/int8_weight.h"
#include "worker/compress/transformer_compress.h"
#include "worker/nn/cnn_build.h"

namespace shrink::worker {
namespace {

// Each prunable layer, the layer that consumes its outputs, and how many input
// columns of that consumer one output unit feeds.
struct PruneLink {
  const char* layer;
  const char* next;
  int64_t input_group;
};
constexpr PruneLink kPruneLinks[] = {{"conv1", "conv2", 1}, {"conv2", "fc1", kCnnFeaturePixels}, {"fc1", "fc2", 1}};

}  // namespace

torch::Tensor KeptUnitsByL1(const torch::Tensor& weight, double ratio) {
  torch::NoGradGuard no_grad;
  const int64_t out = weight.size(0);
  return KeptByImportance(weight.detach().to(torch::kFloat64).abs().reshape({out, -1}).sum(1), ratio);
}

absl::StatusOr<std::map<std::string, torch::Tensor>> CnnActivationImportance(const CnnCheckpoint& checkpoint,
                                                                             const torch::Tensor& images) {
  torch::NoGradGuard no_grad;
  const CnnWidths& widths = checkpoint.widths;
  if (!images.defined() || images.dim() != 4 || images.size(0) == 0 || images.size(1) != widths.in_channels ||
      images.size(2) != kCnnImageSide || images.size(3) != kCnnImageSide) {
    return absl::InvalidArgumentError(absl::StrCat("activation importance needs calibration images [n, ",
                                                   widths.in_channels, ", ", kCnnImageSide, ", ", kCnnImageSide,
                                                   "] with n > 0"));
  }
  for (const char* layer : {"conv1", "conv2", "fc1", "fc2"}) {
    if (checkpoint.storage.at(layer).scheme != kSchemeFloat32) {
      return absl::FailedPreconditionError(absl::StrCat("activation importance needs fp32 weights; ", layer, " is ",
                                                        checkpoint.storage.at(layer).scheme));
    }
  }
  SHRINK_ASSIGN_OR_RETURN(Cnn net, BuildCnn(checkpoint));
  const torch::Tensor conv2 = checkpoint.tensors.at("conv2.weight");  // [conv2, conv1, k, k]
  // conv2 split per input channel: a grouped conv whose output g * conv2 + o is conv1 channel g's
  // contribution to conv2 channel o.
  const torch::Tensor per_channel =
      conv2.transpose(0, 1).reshape({widths.conv1 * widths.conv2, 1, kCnnKernel, kCnnKernel}).contiguous();
  const torch::Tensor fc1 = checkpoint.tensors.at("fc1.weight").view({widths.fc1, widths.conv2, kCnnFeaturePixels});
  const torch::Tensor fc2_norms = checkpoint.tensors.at("fc2.weight").to(torch::kFloat64).norm(2, {0});  // [fc1]
  torch::Tensor conv1_sum = torch::zeros({widths.conv1}, torch::kFloat64);
  torch::Tensor conv2_sum = torch::zeros({widths.conv2}, torch::kFloat64);
  torch::Tensor fc1_sum = torch::zeros({widths.fc1}, torch::kFloat64);
  const int64_t n = images.size(0);
  constexpr int64_t kBatch = 32;  // bounds the grouped conv's [batch, conv1 * conv2, 14, 14] output
  for (int64_t start = 0; start < n; start += kBatch) {
    const int64_t count = std::min(kBatch, n - start);
    std::vector<torch::Tensor> features;  // conv1 and conv2 after ReLU + pool, fc1 after ReLU
    net->forward(images.narrow(0, start, count).to(torch::kFloat32), &features);
    const torch::Tensor& a1 = features[0];
    const int64_t side = a1.size(2);
    torch::Tensor parts = torch::nn::functional::conv2d(
        a1, per_channel, torch::nn::functional::Conv2dFuncOptions().padding(kCnnKernel / 2).groups(widths.conv1));
    conv1_sum += parts.view({count, widths.conv1, widths.conv2, side, side})
                     .norm(2, {2})
                     .to(torch::kFloat64)
                     .sum({0, 2, 3}) /
                 static_cast<double>(side * side);
    torch::Tensor a2 = features[1].reshape({count, widths.conv2, kCnnFeaturePixels});
    conv2_sum += torch::einsum("ncp,ocp->nco", {a2, fc1}).norm(2, {2}).to(torch::kFloat64).sum(0);
    fc1_sum += features[2].abs().to(torch::kFloat64).sum(0) * fc2_norms;
  }
  const double examples = static_cast<double>(n);
  return std::map<std::string, torch::Tensor>{
      {"conv1", conv1_sum / examples}, {"conv2", conv2_sum / examples}, {"fc1", fc1_sum / examples}};
}

KeptUnits ChooseKeptUnits(const CnnCheckpoint& fp32, const std::vector<shrink::v1::LayerAction>& actions,
                          const std::map<std::string, torch::Tensor>& importance) {
  KeptUnits kept;
  for (const auto& action : actions) {
    if (action.prune() <= 0) continue;
    auto scores = importance.find(action.name());
    kept[action.name()] = scores != importance.end()
                              ? KeptByImportance(scores->second, action.prune())
                              : KeptUnitsByL1(fp32.tensors.at(action.name() + ".weight"), action.prune());
  }
  return kept;
}

absl::StatusOr<CnnCheckpoint> PruneCnn(const CnnCheckpoint& fp32, const KeptUnits& kept) {
  torch::NoGradGuard no_grad;
  CnnCheckpoint out = fp32;
  for (const auto& [layer, units] : kept) {
    const PruneLink* link = nullptr;
    for (const auto& candidate : kPruneLinks) {
      if (layer == candidate.layer) link = &candidate;
    }
    if (link == nullptr) return absl::InvalidArgumentError(absl::StrCat("layer ", layer, " cannot be pruned"));
    if (out.storage.at(layer).scheme != kSchemeFloat32 || out.storage.at(link->next).scheme != kSchemeFloat32) {
      return absl::FailedPreconditionError(absl::StrCat("pruning ", layer, " needs fp32 weights"));
    }
    const std::string weight = absl::StrCat(layer, ".weight"), bias = absl::StrCat(layer, ".bias");
    out.tensors[weight] = out.tensors.at(weight).index_select(0, units).contiguous();
    out.tensors[bias] = out.tensors.at(bias).index_select(0, units).contiguous();
    // Each kept unit feeds `input_group` consecutive input columns of the next layer.
    torch::Tensor columns =
        (units.unsqueeze(1) * link->input_group + torch::arange(link->input_group, torch::kInt64)).flatten();
    const std::string next_weight = absl::StrCat(link->next, ".weight");
    out.tensors[next_weight] = out.tensors.at(next_weight).index_select(1, columns).contiguous();
  }
  SHRINK_RETURN_IF_ERROR(ValidateCheckpoint(out, "pruned model"));
  return out;
}

std::map<std::string, torch::Tensor> RecordCnnInputs(const CnnCheckpoint& checkpoint, const torch::Tensor& images,
                                                     int64_t max_rows) {
  torch::NoGradGuard no_grad;
  std::map<std::string, torch::Tensor> inputs;
  auto built = BuildCnn(checkpoint);
  if (!built.ok() || !images.defined() || images.size(0) == 0) return inputs;
  Cnn m = *built;
  // Conv inputs as the patches each output pixel multiplies: [N * pixels, in * k * k].
  auto patches = [&](const torch::Tensor& x) {
    torch::Tensor cols = torch::nn::functional::unfold(
        x, torch::nn::functional::UnfoldFuncOptions({kCnnKernel, kCnnKernel}).padding(kCnnKernel / 2));
    return SubsampleRows(cols.transpose(1, 2).reshape({-1, cols.size(1)}), max_rows);
  };
  torch::Tensor x = images.to(torch::kFloat32);
  inputs["conv1"] = patches(x);
  x = torch::max_pool2d(torch::relu(m->conv1(x)), 2);
  inputs["conv2"] = patches(x);
  x = torch::max_pool2d(torch::relu(m->conv2(x)), 2).flatten(1);
  inputs["fc1"] = SubsampleRows(x, max_rows);
  if (!m->fc1) return inputs;
  x = torch::relu(m->fc1(x));
  inputs["fc2"] = SubsampleRows(x, max_rows);
  return inputs;
}

absl::StatusOr<CnnCheckpoint> QuantizeCnn(const CnnCheckpoint& fp32, const std::map<std::string, int>& bits,
                                          const std::map<std::string, torch::Tensor>& inputs) {
  torch::NoGradGuard no_grad;
  CnnCheckpoint out = fp32;
  for (const auto& [layer, layer_bits] : bits) {
    if (layer_bits == kFullPrecisionBits) continue;
    const bool conv = layer.rfind("conv", 0) == 0;
    const std::string weight_name = absl::StrCat(layer, ".weight");
    const torch::Tensor weight = Float32Weight(fp32, layer);
    LayerStorage& storage = out.storage[layer];
    storage.bits = layer_bits;
    if (layer_bits >= kMinBits && layer_bits <= 7) {
      auto x = inputs.find(layer);
      const bool calibrated = x != inputs.end() && x->second.defined() && x->second.size(0) > 0;
      auto packed = QuantizeTensorGroupwise(weight, layer_bits, kQuantGroupSize, calibrated ? x->second : torch::Tensor());
      if (!packed.ok()) return absl::InvalidArgumentError(absl::StrCat("layer ", layer, ": ", packed.status().message()));
      PackedTensors t = ToTensors(*packed);
      storage.scheme = kSchemeGroupwise;
      storage.group_size = kQuantGroupSize;
      storage.method = calibrated ? "gptq" : "rtn";
      out.tensors.erase(weight_name);
      out.tensors[layer + ".weight_packed"] = t.packed;
      out.tensors[layer + ".weight_scales"] = t.scales;
      out.tensors[layer + ".weight_zeros"] = t.zeros;
    } else if (layer_bits >= 9 && layer_bits <= 16) {
      storage.scheme = kSchemeFloat16;
      out.tensors[weight_name] = weight.to(torch::kFloat16).contiguous();
    } else if (layer_bits == 8) {
      QuantizedWeight q;
      if (conv) {
        // Conv weights are stored in int8 but widened to fp32 at load: LibTorch's quantized
        // convs need quantized activations end to end, which this model does not use.
        storage.scheme = kSchemeInt8WeightPerChannel;
        q = QuantizePerChannel(weight);
      } else if (OnednnLinearAcceptsPerChannel()) {
        storage.scheme = kSchemeInt8DynamicPerChannel;
        q = QuantizePerChannel(weight);
      } else {
        storage.scheme = kSchemeInt8DynamicPerTensor;
        q = QuantizePerTensor(weight);
      }
      out.tensors[weight_name] = q.values;
      out.tensors[absl::StrCat(layer, ".weight_scale")] = q.scales;
    } else {
      return absl::UnimplementedError(absl::StrCat("layer ", layer, ": ", layer_bits, "-bit weights are not supported"));
    }
  }
  SHRINK_RETURN_IF_ERROR(ValidateCheckpoint(out, "quantized model"));
  return out;
}

absl::StatusOr<CnnCheckpoint> CompressCnn(const CnnCheckpoint& fp32,
                                          const std::vector<shrink::v1::LayerAction>& actions,
                                          const torch::Tensor& calibration, const CnnDistillation& distill,
                                          PruneCriterion criterion) {
  const int64_t steps = distill.images.defined() ? DistillSteps(actions, distill.options.max_steps) : 0;
  bool prunes = false;
  CnnDistillPlan plan;
  plan.options = distill.options;
  for (const auto& action : actions) {
    prunes = prunes || action.prune() > 0;
    plan.layer_weight[action.name()] = action.distill();
  }
  // Distillation prunes in two stages (half the ratio, distill, the rest, distill); without it, one.
  const bool staged = steps > 0 && prunes;
  std::vector<shrink::v1::LayerAction> first = actions;
  if (staged) {
    for (auto& action : first) action.set_prune(FirstStagePrune(action.prune()));
  }
  // Each stage ranks the units of the model it prunes (activations when asked for and possible).
  const bool by_activation =
      prunes && criterion == PruneCriterion::kActivation && calibration.defined() && calibration.size(0) > 0;
  auto choose = [&](const CnnCheckpoint& model,
                    const std::vector<shrink::v1::LayerAction>& stage) -> absl::StatusOr<KeptUnits> {
    std::map<std::string, torch::Tensor> importance;
    if (by_activation) {
      SHRINK_ASSIGN_OR_RETURN(importance, CnnActivationImportance(model, calibration));
    }
    return ChooseKeptUnits(model, stage, importance);
  };
  SHRINK_ASSIGN_OR_RETURN(KeptUnits kept, choose(fp32, first));
  SHRINK_ASSIGN_OR_RETURN(CnnCheckpoint pruned, PruneCnn(fp32, kept));
  plan.teacher_units = kept;
  auto distill_stage = [&](const CnnCheckpoint& student, int64_t stage_steps) {
    plan.steps = stage_steps;
    return DistillCnn(fp32, student, distill.images, distill.labels, plan);
  };
  if (staged) {
    SHRINK_ASSIGN_OR_RETURN(pruned, distill_stage(pruned, FirstStageSteps(steps)));
    std::vector<shrink::v1::LayerAction> second = actions;
    for (auto& action : second) {
      if (action.prune() <= 0) continue;
      const int64_t original = fp32.tensors.at(action.name() + ".weight").size(0);
      const int64_t current = pruned.tensors.at(action.name() + ".weight").size(0);
      action.set_prune(SecondStagePrune(original, current, action.prune()));
    }
    SHRINK_ASSIGN_OR_RETURN(KeptUnits rest, choose(pruned, second));
    SHRINK_ASSIGN_OR_RETURN(pruned, PruneCnn(pruned, rest));
    for (const auto& [layer, units] : rest) plan.teacher_units[layer] = plan.teacher_units[layer].index_select(0, units);
    SHRINK_ASSIGN_OR_RETURN(pruned, distill_stage(pruned, steps - FirstStageSteps(steps)));
  } else if (steps > 0) {
    SHRINK_ASSIGN_OR_RETURN(pruned, distill_stage(pruned, steps));
  }
  std::map<std::string, int> bits;
  bool low_bits = false;
  for (const auto& action : actions) {
    bits[action.name()] = EffectiveBits(action.bits());
    low_bits = low_bits || (bits[action.name()] >= kMinBits && bits[action.name()] <= 7);
  }
  // GPTQ calibrates on the pruned (distilled) fp32 model's inputs to each layer.
  std::map<std::string, torch::Tensor> inputs;
  if (low_bits && calibration.defined()) inputs = RecordCnnInputs(pruned, calibration, 2048);
  SHRINK_ASSIGN_OR_RETURN(CnnCheckpoint compressed, QuantizeCnn(pruned, bits, inputs));
  compressed.compressed = true;
  return compressed;
}

}  // namespace shrink::worker
