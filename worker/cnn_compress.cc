#include "worker/cnn_compress.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/policy.h"
#include "common/status.h"
#include "worker/cnn_distill.h"
#include "worker/distill.h"
#include "worker/group_linear.h"
#include "worker/group_quant.h"

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
  const int64_t removed = std::clamp<int64_t>(std::llround(ratio * static_cast<double>(out)), 0, out - 1);
  torch::Tensor norms = weight.detach().to(torch::kFloat64).abs().reshape({out, -1}).sum(1).contiguous();
  const double* norm = norms.data_ptr<double>();
  std::vector<int64_t> order(out);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return norm[a] > norm[b]; });
  order.resize(out - removed);
  std::sort(order.begin(), order.end());  // keep the surviving units in their original order
  return torch::tensor(order, torch::kInt64);
}

KeptUnits ChooseKeptUnits(const CnnCheckpoint& fp32, const std::vector<shrink::v1::LayerAction>& actions) {
  KeptUnits kept;
  for (const auto& action : actions) {
    if (action.prune() <= 0) continue;
    kept[action.name()] = KeptUnitsByL1(fp32.tensors.at(action.name() + ".weight"), action.prune());
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
                                          const torch::Tensor& calibration, const CnnDistillation& distill) {
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
  KeptUnits kept = ChooseKeptUnits(fp32, first);
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
    KeptUnits rest = ChooseKeptUnits(pruned, second);
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
