#include "agent/budget.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/policy.h"

namespace shrink::agent {
namespace {

// Units left after pruning `ratio` of `units` (at least one survives).
int64_t KeptUnits(int64_t units, double ratio) {
  int64_t removed = static_cast<int64_t>(std::llround(ratio * static_cast<double>(units)));
  return std::max<int64_t>(1, units - removed);
}

// Bytes per stored weight for a bit width.
double BytesPerWeight(int bits) {
  bits = EffectiveBits(bits);
  if (bits == 8) return 1.0;
  if (bits <= 16) return 2.0;
  return 4.0;
}

// Bytes of one layer: weights at their width, plus fp32 bias and, for int8,
// one fp32 scale per output unit.
double LayerBytes(const v1::LayerInfo& layer, int64_t in, int64_t out, int bits) {
  double weights = static_cast<double>(in) * static_cast<double>(out) *
                   static_cast<double>(std::max<int64_t>(1, layer.kernel_elements()));
  double extra = 4.0 * static_cast<double>(out) * (EffectiveBits(bits) == 8 ? 2 : 1);
  return weights * BytesPerWeight(bits) + extra;
}

}  // namespace

double EstimateBytes(const v1::ModelDescription& model, const std::vector<v1::LayerAction>& actions) {
  double total = 0;
  int64_t previous_out = -1;
  for (int i = 0; i < model.layers_size(); ++i) {
    const v1::LayerInfo& layer = model.layers(i);
    const v1::LayerAction* action = i < static_cast<int>(actions.size()) ? &actions[i] : nullptr;
    int64_t in = layer.in_features();
    if (previous_out >= 0) in = previous_out * std::max<int64_t>(1, layer.input_group());
    int64_t out = layer.out_features();
    if (action != nullptr && layer.prunable()) out = KeptUnits(out, action->prune());
    total += LayerBytes(layer, in, out, action != nullptr ? action->bits() : kFullPrecisionBits);
    previous_out = out;
  }
  return total;
}

double EstimateSizeRatio(const v1::ModelDescription& model,
                         const std::vector<v1::LayerAction>& actions) {
  double base = EstimateBytes(model, {});
  // Files carry a little more than the weights (config.json, headers); that
  // overhead stays when the weights shrink, so count it on both sides.
  double overhead = std::max(0.0, static_cast<double>(model.bytes()) - base);
  double before = base + overhead;
  return before > 0 ? (EstimateBytes(model, actions) + overhead) / before : 1.0;
}

bool ClampToSizeTarget(const v1::ModelDescription& model, double target_size,
                       std::vector<v1::LayerAction>* actions) {
  auto meets = [&] { return EstimateSizeRatio(model, *actions) <= target_size; };
  if (meets()) return true;

  // Lower precision first: it costs less accuracy per byte than pruning.
  std::vector<int> by_size(model.layers_size());
  std::iota(by_size.begin(), by_size.end(), 0);
  std::sort(by_size.begin(), by_size.end(),
            [&](int a, int b) { return model.layers(a).params() > model.layers(b).params(); });
  for (int i : by_size) {
    if (EffectiveBits((*actions)[i].bits()) > 8) (*actions)[i].set_bits(8);
    if (meets()) return true;
  }

  // Then prune all prunable layers a little more, evenly, until it fits.
  constexpr double kStep = 0.01;
  for (int round = 0; round < static_cast<int>(kMaxPrune / kStep) + 1; ++round) {
    bool changed = false;
    for (int i = 0; i < model.layers_size(); ++i) {
      if (!model.layers(i).prunable()) continue;
      double p = std::min(kMaxPrune, (*actions)[i].prune() + kStep);
      if (p > (*actions)[i].prune()) {
        (*actions)[i].set_prune(p);
        changed = true;
      }
    }
    if (meets()) return true;
    if (!changed) break;
  }
  return meets();
}

v1::Policy ToPolicy(const std::vector<v1::LayerAction>& actions) {
  v1::Policy policy;
  for (const auto& a : actions) *policy.add_layers() = a;
  return policy;
}

}  // namespace shrink::agent
