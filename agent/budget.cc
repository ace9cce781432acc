#include "agent/budget.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "common/policy.h"

namespace shrink::agent {
namespace {

// Units left after pruning `ratio` of `units` (at least one survives).
int64_t KeptUnits(int64_t units, double ratio) {
  int64_t removed = static_cast<int64_t>(std::llround(ratio * static_cast<double>(units)));
  return std::max<int64_t>(1, units - removed);
}

// One stored weight matrix [rows, cols].
struct Matrix {
  int64_t rows, cols;
};

// The weight matrices a described layer stores with `out` units kept and `in` inputs,
// plus its fp32 parameters that are not weights (biases, LayerNorms). Transformer kinds
// follow the worker's modules: attention = q, k, v [heads*d, h] and o [h, heads*d];
// ffn = fc1 [inter, h] and fc2 [h, inter]; embedding = tables [rows, h]; head = pool
// [h, h] and classifier [labels, h]. Convs store [out, in * kernel], linears [out, in].
std::vector<Matrix> Matrices(const v1::LayerInfo& layer, int64_t in, int64_t out, int64_t* other_params) {
  const std::string& kind = layer.kind();
  const int64_t kernel = std::max<int64_t>(1, layer.kernel_elements());
  if (kind == "attention") {
    const int64_t inner = out * (kernel / 4);
    *other_params = 3 * inner + 3 * in;  // q/k/v/o biases, LayerNorm
    return {{inner, in}, {inner, in}, {inner, in}, {in, inner}};
  }
  if (kind == "ffn") {
    *other_params = out + 3 * in;  // fc1/fc2 biases, LayerNorm
    return {{out, in}, {in, out}};
  }
  if (kind == "embedding") {
    *other_params = std::max<int64_t>(0, layer.params() - in * out);  // LayerNorm
    return {{in, out}};
  }
  if (kind == "head") {
    *other_params = in + out;
    return {{in, in}, {out, in}};
  }
  *other_params = out;  // bias
  return {{out, in * kernel}};
}

// Bytes of one layer: weights as StoredWeightBytes prices them at `bits`, other parameters fp32.
double LayerBytes(const v1::LayerInfo& layer, int64_t in, int64_t out, int bits) {
  int64_t other = 0;
  int64_t bytes = 0;
  for (const Matrix& m : Matrices(layer, in, out, &other)) bytes += StoredWeightBytes(m.rows, m.cols, bits);
  return static_cast<double>(bytes + 4 * other);
}

// True when pruning a layer's outputs removes inputs of the next (the CNN's chain);
// transformer sublayers all read and write the hidden width.
bool Chained(const v1::LayerInfo& layer) { return layer.kind() == "conv2d" || layer.kind() == "linear"; }

}  // namespace

double EstimateBytes(const v1::ModelDescription& model, const std::vector<v1::LayerAction>& actions) {
  // A transformer block (attention followed by its ffn) whose two sublayers both ask for the
  // maximum prune ratio is removed whole by the worker; at least one block stays.
  auto maxed = [&](int i) {
    return i < static_cast<int>(actions.size()) && actions[i].prune() >= kMaxPrune - 1e-9;
  };
  std::vector<bool> removed(model.layers_size(), false);
  int blocks = 0, dropped = 0;
  for (const auto& layer : model.layers()) blocks += layer.kind() == "attention" ? 1 : 0;
  for (int i = 0; i + 1 < model.layers_size(); ++i) {
    if (model.layers(i).kind() == "attention" && model.layers(i + 1).kind() == "ffn" && maxed(i) && maxed(i + 1) &&
        dropped + 1 < blocks) {
      removed[i] = removed[i + 1] = true;
      ++dropped;
    }
  }
  double total = 0;
  int64_t previous_out = -1;
  for (int i = 0; i < model.layers_size(); ++i) {
    if (removed[i]) continue;
    const v1::LayerInfo& layer = model.layers(i);
    const v1::LayerAction* action = i < static_cast<int>(actions.size()) ? &actions[i] : nullptr;
    int64_t in = layer.in_features();
    if (previous_out >= 0 && Chained(layer)) in = previous_out * std::max<int64_t>(1, layer.input_group());
    int64_t out = layer.out_features();
    if (action != nullptr && layer.prunable()) out = KeptUnits(out, action->prune());
    total += LayerBytes(layer, in, out, action != nullptr ? action->bits() : kFullPrecisionBits);
    previous_out = Chained(layer) ? out : -1;
  }
  return total;
}

double EstimateMetadataGrowth(const v1::ModelDescription& model, const std::vector<v1::LayerAction>& actions) {
  double total = 0;
  for (int i = 0; i < model.layers_size() && i < static_cast<int>(actions.size()); ++i) {
    const v1::LayerAction& action = actions[i];
    const int bits = EffectiveBits(action.bits());
    const bool pruned = model.layers(i).prunable() && action.prune() > 0;
    if (bits == kFullPrecisionBits && !pruned) continue;
    total += kConfigBytesPerCompressedLayer;
    int64_t unused = 0;
    // An embedding layer stores up to three tables (word, position, token type).
    const auto matrices = model.layers(i).kind() == "embedding" ? 3 : Matrices(model.layers(i), 1, 1, &unused).size();
    // Packed codes add scales and zeros beside each weight; int8 adds a scale.
    const int extra_tensors = bits <= 7 ? 2 : bits == 8 ? 1 : 0;
    total += static_cast<double>(kHeaderBytesPerTensor * extra_tensors * static_cast<int64_t>(matrices));
  }
  return total;
}

double EstimateSizeRatio(const v1::ModelDescription& model,
                         const std::vector<v1::LayerAction>& actions) {
  double base = EstimateBytes(model, {});
  // Files carry a little more than the weights (config.json, headers). That overhead stays
  // when the weights shrink, so it counts on both sides, and it grows with every compressed
  // layer: the candidate's side adds that growth.
  if (model.bytes() <= 0) return base > 0 ? EstimateBytes(model, actions) / base : 1.0;
  double overhead = std::max(0.0, static_cast<double>(model.bytes()) - base);
  double before = base + overhead;
  return (EstimateBytes(model, actions) + overhead + EstimateMetadataGrowth(model, actions)) / before;
}

bool ClampToSizeTarget(const v1::ModelDescription& model, double target_size,
                       std::vector<v1::LayerAction>* actions) {
  auto meets = [&] { return EstimateSizeRatio(model, *actions) <= target_size; };
  if (meets()) return true;

  // Lower precision first: it costs less accuracy per byte than pruning. int8 first (real
  // int8 kernels, little accuracy lost), then the 4-bit packed form where int8 is not enough.
  std::vector<int> by_size(model.layers_size());
  std::iota(by_size.begin(), by_size.end(), 0);
  std::sort(by_size.begin(), by_size.end(),
            [&](int a, int b) { return model.layers(a).params() > model.layers(b).params(); });
  for (int i : by_size) {
    if (EffectiveBits((*actions)[i].bits()) > 8) (*actions)[i].set_bits(8);
    if (meets()) return true;
  }
  for (int i : by_size) {
    if (EffectiveBits((*actions)[i].bits()) > kMinBits) (*actions)[i].set_bits(kMinBits);
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

std::vector<int> OfferedBitWidths(const v1::ModelDescription& model, double target_size) {
  std::vector<int> widths = {kActionBitLevels[0]};
  for (int i = 1; i < kNumActionBitLevels; ++i) {
    std::vector<v1::LayerAction> uniform;
    for (const auto& layer : model.layers()) {
      v1::LayerAction a;
      a.set_name(layer.name());
      a.set_bits(kActionBitLevels[i]);
      a.set_prune(layer.prunable() ? kClampPlanPrune : 0.0);
      uniform.push_back(a);
    }
    if (EstimateSizeRatio(model, uniform) <= target_size) widths.push_back(kActionBitLevels[i]);
  }
  return widths;
}

v1::Policy ToPolicy(const std::vector<v1::LayerAction>& actions) {
  v1::Policy policy;
  for (const auto& a : actions) *policy.add_layers() = a;
  return policy;
}

}  // namespace shrink::agent
