#include "worker/compress/cnn_compress.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/policy.h"
#include "common/status.h"
#include "worker/compress/distill/cnn_distill.h"
#include "worker/compress/distill/distill.h"

namespace shrink::worker {

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
