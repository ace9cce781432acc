#include "worker/compress/transformer_compress.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/policy.h"
#include "common/status.h"
#include "worker/compress/distill/distill.h"
#include "worker/compress/distill/transformer_distill.h"

namespace shrink::worker {

absl::StatusOr<TransformerWeights> CompressTransformer(const TransformerWeights& fp32,
                                                       const std::vector<shrink::v1::LayerAction>& actions,
                                                       const std::vector<CalibrationBatch>& calibration,
                                                       PruneImportance importance,
                                                       const TransformerDistillation& distill, torch::Device device) {
  const auto all_groups = TransformerLayerGroups(fp32.config);
  // Blocks whose attention and FFN both ask for the maximum prune ratio go whole.
  std::map<int, int> maxed;  // block -> sublayers at kRemoveBlockPrune
  for (const auto& action : actions) {
    const TransformerLayerGroup* group = FindLayerGroup(all_groups, action.name());
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
    const TransformerLayerGroup* group = FindLayerGroup(groups, name);
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
        const TransformerLayerGroup* group = FindLayerGroup(model_groups, name);
        modules.push_back(absl::StrCat("blocks.", group->block, group->kind == "attention" ? ".attention.o" : ".ffn.fc2"));
      }
      SHRINK_ASSIGN_OR_RETURN(activations, RecordDenseInputs(model, calibration, modules, kMaxCalibrationRows, device));
    }
    KeptTransformerUnits kept;
    for (const auto& [name, ratio] : prune) {
      const TransformerLayerGroup* group = FindLayerGroup(model_groups, name);
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
      const TransformerLayerGroup* group = FindLayerGroup(groups, name);
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
      const TransformerLayerGroup* group = FindLayerGroup(stage_groups, name);
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
    const TransformerLayerGroup* group = FindLayerGroup(groups, layer);
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
