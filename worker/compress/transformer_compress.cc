#include "worker/compress/transformer_compress.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/policy.h"
#include "common/status.h"
#include "worker/compress/quantize/groupwise_quantize.h"
#include "worker/checkpoint/packed_weight.h"
#include "worker/checkpoint/int8_weight.h"
#include "worker/compress/distill/distill.h"
#include "worker/compress/distill/transformer_distill.h"
#include "worker/nn/transformer_build.h"

namespace shrink::worker {
namespace {

const TransformerLayerGroup* FindGroup(const std::vector<TransformerLayerGroup>& groups, const std::string& name) {
  for (const auto& group : groups) {
    if (group.name == name) return &group;
  }
  return nullptr;
}

// Row indices of the kept heads: head h owns rows [h * d, (h + 1) * d).
torch::Tensor HeadRows(const torch::Tensor& heads, int64_t head_dim) {
  return (heads.unsqueeze(1) * head_dim + torch::arange(head_dim, torch::kInt64)).flatten();
}

}  // namespace

torch::Tensor UnitImportance(const TransformerWeights& w, const TransformerLayerGroup& group) {
  torch::NoGradGuard no_grad;
  const std::string b = absl::StrCat("blocks.", group.block, ".");
  auto abs = [&](const std::string& name) { return w.tensors.at(name).to(torch::kFloat64).abs(); };
  if (group.kind == "attention") {
    const int64_t d = w.config.head_dim();
    torch::Tensor rows = abs(b + "attention.q.weight").sum(1) + abs(b + "attention.k.weight").sum(1) +
                         abs(b + "attention.v.weight").sum(1) + abs(b + "attention.o.weight").sum(0);
    return rows.view({-1, d}).sum(1);
  }
  return abs(b + "ffn.fc1.weight").sum(1) + abs(b + "ffn.fc2.weight").sum(0);
}

torch::Tensor ActivationImportance(const TransformerWeights& w, const TransformerLayerGroup& group,
                                   const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  const std::string b = absl::StrCat("blocks.", group.block, ".");
  torch::Tensor inputs = x.to(torch::kFloat64);
  if (group.kind == "attention") {
    const int64_t d = w.config.head_dim();
    torch::Tensor o = Float32ModuleWeight(w, b + "attention.o").to(torch::kFloat64);  // [hidden, heads * d]
    const int64_t heads = o.size(1) / d;
    std::vector<double> scores;
    for (int64_t h = 0; h < heads; ++h) {
      torch::Tensor part = inputs.narrow(1, h * d, d).matmul(o.narrow(1, h * d, d).t());  // [n, hidden]
      scores.push_back(part.norm(2, {1}).mean().item<double>());
    }
    return torch::tensor(scores, torch::kFloat64);
  }
  torch::Tensor fc2 = Float32ModuleWeight(w, b + "ffn.fc2").to(torch::kFloat64);  // [hidden, inter]
  return inputs.abs().mean(0) * fc2.norm(2, {0});
}

absl::StatusOr<TransformerWeights> RemoveBlocks(const TransformerWeights& w, const std::vector<int>& blocks) {
  const int64_t n = w.config.num_layers;
  std::vector<int64_t> new_index(n, -1);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (std::find(blocks.begin(), blocks.end(), i) == blocks.end()) new_index[i] = kept++;
  }
  if (kept == 0) return absl::InvalidArgumentError("removing every transformer block leaves no model; keep at least one");
  for (int b : blocks) {
    if (b < 0 || b >= n) return absl::InvalidArgumentError(absl::StrCat("no block ", b, " to remove (", n, " blocks)"));
  }
  TransformerWeights out;
  out.config = w.config;
  out.config.num_layers = kept;
  out.config.layers.clear();
  for (int64_t i = 0; i < n; ++i) {
    if (new_index[i] >= 0 && i < static_cast<int64_t>(w.config.layers.size())) out.config.layers.push_back(w.config.layers[i]);
  }
  for (const auto& [name, tensor] : w.tensors) {
    if (name.rfind("blocks.", 0) != 0) {
      out.tensors[name] = tensor;
      continue;
    }
    const size_t dot = name.find('.', 7);
    const int64_t index = std::stoll(name.substr(7, dot - 7));
    if (new_index[index] < 0) continue;
    out.tensors[absl::StrCat("blocks.", new_index[index], name.substr(dot))] = tensor;
  }
  const std::string prefix = BlockPrefix(w.config);
  out.config.storage.clear();
  for (const auto& [layer, storage] : w.config.storage) {
    std::string name = layer;
    if (layer.rfind(prefix, 0) == 0) {
      const size_t dot = layer.find('.', prefix.size());
      const int64_t index = std::stoll(layer.substr(prefix.size(), dot - prefix.size()));
      if (new_index[index] < 0) continue;
      name = absl::StrCat(prefix, new_index[index], layer.substr(dot));
    }
    out.config.storage[name] = storage;
  }
  SHRINK_RETURN_IF_ERROR(ValidateTransformerWeights(out, "model with blocks removed"));
  return out;
}

torch::Tensor KeptByImportance(const torch::Tensor& importance, double ratio) {
  torch::Tensor scores = importance.to(torch::kFloat64).contiguous();
  const int64_t units = scores.size(0);
  const int64_t removed = std::clamp<int64_t>(std::llround(ratio * static_cast<double>(units)), 0, units - 1);
  const double* score = scores.data_ptr<double>();
  std::vector<int64_t> order(units);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t c) { return score[a] > score[c]; });
  order.resize(units - removed);
  std::sort(order.begin(), order.end());
  return torch::tensor(order, torch::kInt64);
}

absl::StatusOr<TransformerWeights> PruneTransformer(const TransformerWeights& fp32, const KeptTransformerUnits& kept) {
  torch::NoGradGuard no_grad;
  TransformerWeights out = fp32;
  const auto groups = TransformerLayerGroups(fp32.config);
  for (const auto& [layer, units] : kept) {
    const TransformerLayerGroup* group = FindGroup(groups, layer);
    if (group == nullptr || (group->kind != "attention" && group->kind != "ffn")) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", layer, " cannot be pruned"));
    }
    auto storage = fp32.config.storage.find(layer);
    if (storage != fp32.config.storage.end() && storage->second.bits != kFullPrecisionBits) {
      return absl::FailedPreconditionError(absl::StrCat("pruning ", layer, " needs fp32 weights"));
    }
    const std::string b = absl::StrCat("blocks.", group->block, ".");
    auto rows = [&](const std::string& name, const torch::Tensor& index) {
      out.tensors[name] = out.tensors.at(name).index_select(0, index).contiguous();
    };
    auto cols = [&](const std::string& name, const torch::Tensor& index) {
      out.tensors[name] = out.tensors.at(name).index_select(1, index).contiguous();
    };
    if (group->kind == "attention") {
      torch::Tensor index = HeadRows(units, fp32.config.head_dim());
      for (const char* part : {"q", "k", "v"}) {
        rows(absl::StrCat(b, "attention.", part, ".weight"), index);
        rows(absl::StrCat(b, "attention.", part, ".bias"), index);
      }
      cols(b + "attention.o.weight", index);
    } else {
      rows(b + "ffn.fc1.weight", units);
      rows(b + "ffn.fc1.bias", units);
      cols(b + "ffn.fc2.weight", units);
    }
  }
  SHRINK_RETURN_IF_ERROR(ValidateTransformerWeights(out, "pruned model"));
  return out;
}

absl::StatusOr<DenseInputs> RecordDenseInputs(const TransformerWeights& weights,
                                              const std::vector<CalibrationBatch>& batches,
                                              const std::vector<std::string>& modules, int64_t max_rows,
                                              torch::Device device) {
  torch::NoGradGuard no_grad;
  SHRINK_ASSIGN_OR_RETURN(Transformer net, BuildTransformer(weights, device));
  std::map<std::string, std::vector<torch::Tensor>> seen;
  torch::Tensor current_mask;  // the batch being run: selects rows of real tokens
  std::vector<Dense> observed;
  for (const auto& item : net->named_modules()) {
    auto dense = std::dynamic_pointer_cast<DenseImpl>(item.value());
    if (!dense || std::find(modules.begin(), modules.end(), item.key()) == modules.end()) continue;
    const std::string name = item.key();
    dense->observer = [&seen, &current_mask, name](const torch::Tensor& x) {
      torch::Tensor rows = x.reshape({-1, x.size(-1)});
      if (x.dim() == 3 && current_mask.defined() && current_mask.numel() == rows.size(0)) {
        rows = rows.index_select(0, current_mask.reshape({-1}).nonzero().reshape({-1}));
      }
      seen[name].push_back(rows.detach().to(torch::kCPU, torch::kFloat32));
    };
    observed.emplace_back(dense);
  }
  for (const CalibrationBatch& batch : batches) {
    current_mask = batch.mask.to(device);
    net->forward(batch.ids.to(device), current_mask);
  }
  for (auto& dense : observed) dense->observer = nullptr;
  DenseInputs inputs;
  for (auto& [name, parts] : seen) {
    if (!parts.empty()) inputs[name] = SubsampleRows(torch::cat(parts, 0), max_rows);
  }
  return inputs;
}

absl::StatusOr<TransformerWeights> QuantizeTransformer(const TransformerWeights& fp32,
                                                       const std::map<std::string, int>& bits,
                                                       const DenseInputs& inputs, const RecallFlag* recalled) {
  torch::NoGradGuard no_grad;
  TransformerWeights out = fp32;
  const auto groups = TransformerLayerGroups(fp32.config);
  for (const auto& [layer, layer_bits] : bits) {
    SHRINK_RETURN_IF_ERROR(CheckNotRecalled(recalled));  // GPTQ of a large layer takes seconds
    if (layer_bits == kFullPrecisionBits) continue;
    const TransformerLayerGroup* group = FindGroup(groups, layer);
    if (group == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown layer ", layer));
    const bool embedding = group->kind == "embedding";
    LayerStorage storage;
    storage.bits = layer_bits;
    if (layer_bits >= kMinBits && layer_bits <= 7) {
      storage.scheme = kSchemeGroupwise;
      storage.group_size = kQuantGroupSize;
      bool calibrated = !embedding;
      for (const std::string& module : group->modules) {
        auto x = inputs.find(module);
        const bool has_inputs = !embedding && x != inputs.end() && x->second.size(0) > 0;
        calibrated = calibrated && has_inputs;
        auto packed = QuantizeTensorGroupwise(Float32ModuleWeight(fp32, module), layer_bits, kQuantGroupSize,
                                              has_inputs ? x->second : torch::Tensor());
        if (!packed.ok()) return absl::InvalidArgumentError(absl::StrCat("layer ", layer, ", ", module, ": ", packed.status().message()));
        PackedTensors t = ToTensors(*packed);
        out.tensors.erase(module + ".weight");
        out.tensors.erase(module + ".weight_scale");
        out.tensors[module + ".weight_packed"] = t.packed;
        out.tensors[module + ".weight_scales"] = t.scales;
        out.tensors[module + ".weight_zeros"] = t.zeros;
      }
      storage.method = calibrated ? "gptq" : "rtn";
      out.config.storage[layer] = storage;
      continue;
    }
    if (layer_bits >= 9 && layer_bits <= 16) {
      storage.scheme = kSchemeFloat16;
    } else if (layer_bits == 8) {
      storage.scheme = embedding ? kSchemeInt8WeightPerRow
                                 : (OnednnLinearAcceptsPerChannel() ? kSchemeInt8DynamicPerChannel : kSchemeInt8DynamicPerTensor);
    } else {
      return absl::UnimplementedError(absl::StrCat("layer ", layer, ": ", layer_bits, "-bit weights are not supported"));
    }
    for (const std::string& module : group->modules) {
      const torch::Tensor weight = Float32ModuleWeight(fp32, module);
      const std::string name = module + ".weight";
      if (storage.scheme == kSchemeFloat16) {
        out.tensors[name] = weight.to(torch::kFloat16).contiguous();
        continue;
      }
      QuantizedWeight q = storage.scheme == kSchemeInt8DynamicPerTensor ? QuantizePerTensor(weight) : QuantizePerChannel(weight);
      out.tensors[name] = q.values;
      out.tensors[module + ".weight_scale"] = q.scales;
    }
    out.config.storage[layer] = storage;
  }
  SHRINK_RETURN_IF_ERROR(ValidateTransformerWeights(out, "quantized model"));
  return out;
}

absl::StatusOr<TransformerWeights> CompressTransformer(const TransformerWeights& fp32,
                                                       const std::vector<shrink::v1::LayerAction>& actions,
                                                       const std::vector<CalibrationBatch>& calibration,
                                                       PruneImportance importance,
                                                       const TransformerDistillation& distill, torch::Device device) {
  const auto all_groups = TransformerLayerGroups(fp32.config);
  // Blocks whose attention and FFN both ask for the maximum prune ratio go whole.
  std::map<int, int> maxed;  // block -> sublayers at kRemoveBlockPrune
  for (const auto& action : actions) {
    const TransformerLayerGroup* group = FindGroup(all_groups, action.name());
    if (group == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown layer ", action.name()));
    if (action.prune() > 0 && group->kind != "attention" && group->kind != "ffn") {
      return absl::InvalidArgumentError(absl::StrCat("layer ", action.name(), " cannot be pruned"));
    }
    if (group->block >= 0 && action.prune() >= kRemoveBlockPrune - 1e-9) ++maxed[group->block];
  }
  std::vector<int> removed;
  for (const auto& [block, count] : maxed) {
    if (count == 2 && static_cast<int64_t>(removed.size()) + 1 < fp32.config.num_layers) removed.push_back(block);
  }
  TransformerWeights base = fp32;
  if (!removed.empty()) {
    SHRINK_ASSIGN_OR_RETURN(base, RemoveBlocks(fp32, removed));
  }
  // Policy layer names of the removed model: block indices shift down past removed blocks.
  const std::string prefix = BlockPrefix(fp32.config);
  auto renamed = [&](const std::string& layer) -> std::string {
    if (layer.rfind(prefix, 0) != 0) return layer;
    const size_t dot = layer.find('.', prefix.size());
    const int index = std::stoi(layer.substr(prefix.size(), dot - prefix.size()));
    if (std::find(removed.begin(), removed.end(), index) != removed.end()) return "";
    int shift = 0;
    for (int r : removed) shift += r < index ? 1 : 0;
    return absl::StrCat(prefix, index - shift, layer.substr(dot));
  };
  const auto groups = TransformerLayerGroups(base.config);
  std::map<std::string, int> bits;
  std::map<std::string, double> prune;     // surviving prunable layers -> ratio
  std::vector<double> block_weight(base.config.num_layers, 0.0);
  for (const auto& action : actions) {
    const std::string name = renamed(action.name());
    if (name.empty()) continue;  // removed with its block
    const TransformerLayerGroup* group = FindGroup(groups, name);
    if (group == nullptr) return absl::InternalError(absl::StrCat("layer ", action.name(), " lost after block removal"));
    bits[name] = EffectiveBits(action.bits());
    if (action.prune() > 0) prune[name] = action.prune();
    if (group->block >= 0) block_weight[group->block] = std::max(block_weight[group->block], action.distill());
  }
  const int64_t steps = distill.train.empty() ? 0 : DistillSteps(actions, distill.options.max_steps);
  // Distillation prunes in two stages (half the ratio, distill, the rest, distill); without it, one.
  const bool staged = steps > 0 && !prune.empty();

  // Kept heads / neurons of `model` (the current stage) so each layer ends at ratio_of(layer).
  auto choose = [&](const TransformerWeights& model, const std::function<double(const std::string&)>& ratio_of)
      -> absl::StatusOr<KeptTransformerUnits> {
    const auto model_groups = TransformerLayerGroups(model.config);
    // Activation importance reads the inputs of attention.o / ffn.fc2 on the calibration batches.
    DenseInputs activations;
    if (importance == PruneImportance::kActivation && !calibration.empty()) {
      std::vector<std::string> modules;
      for (const auto& [name, ratio] : prune) {
        const TransformerLayerGroup* group = FindGroup(model_groups, name);
        modules.push_back(absl::StrCat("blocks.", group->block, group->kind == "attention" ? ".attention.o" : ".ffn.fc2"));
      }
      SHRINK_ASSIGN_OR_RETURN(activations, RecordDenseInputs(model, calibration, modules, kMaxCalibrationRows, device));
    }
    KeptTransformerUnits kept;
    for (const auto& [name, ratio] : prune) {
      const TransformerLayerGroup* group = FindGroup(model_groups, name);
      const std::string output = absl::StrCat("blocks.", group->block, group->kind == "attention" ? ".attention.o" : ".ffn.fc2");
      auto x = activations.find(output);
      torch::Tensor scores = x != activations.end() ? ActivationImportance(model, *group, x->second) : UnitImportance(model, *group);
      kept[name] = KeptByImportance(scores, ratio_of(name));
    }
    return kept;
  };

  // Teacher heads of each student head (teacher numbering), composed across stages.
  std::vector<torch::Tensor> teacher_heads;
  for (const auto& shape : base.config.layers) teacher_heads.push_back(torch::arange(shape.heads, torch::kInt64));
  auto track_heads = [&](const KeptTransformerUnits& kept) {
    for (const auto& [name, units] : kept) {
      const TransformerLayerGroup* group = FindGroup(groups, name);
      if (group->kind == "attention") teacher_heads[group->block] = teacher_heads[group->block].index_select(0, units);
    }
  };
  std::vector<int64_t> teacher_block;
  for (int64_t b = 0; b < fp32.config.num_layers; ++b) {
    if (std::find(removed.begin(), removed.end(), b) == removed.end()) teacher_block.push_back(b);
  }
  auto distill_stage = [&](const TransformerWeights& student, int64_t stage_steps) -> absl::StatusOr<TransformerWeights> {
    TransformerDistillPlan plan{stage_steps, distill.options, teacher_block, teacher_heads, block_weight};
    return DistillTransformer(fp32, student, distill.train, plan);
  };

  SHRINK_ASSIGN_OR_RETURN(KeptTransformerUnits kept,
                          choose(base, [&](const std::string& name) { return staged ? FirstStagePrune(prune[name]) : prune[name]; }));
  SHRINK_ASSIGN_OR_RETURN(TransformerWeights pruned, PruneTransformer(base, kept));
  track_heads(kept);
  if (staged) {
    SHRINK_ASSIGN_OR_RETURN(pruned, distill_stage(pruned, FirstStageSteps(steps)));
    const auto stage_groups = TransformerLayerGroups(pruned.config);
    SHRINK_ASSIGN_OR_RETURN(KeptTransformerUnits rest, choose(pruned, [&](const std::string& name) {
      const TransformerLayerGroup* group = FindGroup(stage_groups, name);
      const TransformerLayerShape& now = pruned.config.layers[group->block];
      const TransformerLayerShape& before = base.config.layers[group->block];
      return group->kind == "attention" ? SecondStagePrune(before.heads, now.heads, prune[name])
                                        : SecondStagePrune(before.intermediate, now.intermediate, prune[name]);
    }));
    SHRINK_ASSIGN_OR_RETURN(pruned, PruneTransformer(pruned, rest));
    track_heads(rest);
    SHRINK_ASSIGN_OR_RETURN(pruned, distill_stage(pruned, steps - FirstStageSteps(steps)));
  } else if (steps > 0) {
    SHRINK_ASSIGN_OR_RETURN(pruned, distill_stage(pruned, steps));
  }
  // GPTQ needs each 4..7-bit linear's inputs: recorded once on the pruned (distilled) fp32 model.
  std::vector<std::string> calibrated;
  for (const auto& [layer, layer_bits] : bits) {
    const TransformerLayerGroup* group = FindGroup(groups, layer);
    if (group == nullptr || group->kind == "embedding" || layer_bits < kMinBits || layer_bits > 7) continue;
    calibrated.insert(calibrated.end(), group->modules.begin(), group->modules.end());
  }
  DenseInputs inputs;
  SHRINK_RETURN_IF_ERROR(CheckNotRecalled(distill.options.recalled));
  if (!calibrated.empty() && !calibration.empty()) {
    SHRINK_ASSIGN_OR_RETURN(inputs, RecordDenseInputs(pruned, calibration, calibrated, kMaxCalibrationRows, device));
  }
  SHRINK_ASSIGN_OR_RETURN(TransformerWeights compressed, QuantizeTransformer(pruned, bits, inputs, distill.options.recalled));
  compressed.config.compressed = true;
  return compressed;
}

}  // namespace shrink::worker
