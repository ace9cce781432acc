#include "agent/environment.h"

#include <algorithm>
#include <cmath>

#include "agent/budget.h"
#include "common/policy.h"

namespace shrink::agent {
namespace {

float Clamp01(double v) { return static_cast<float>(std::clamp(std::isfinite(v) ? v : 0.0, 0.0, 1.0)); }

double SafeDivide(double a, double b) { return b > 0 ? a / b : 0.0; }

// Index of the narrowest of `levels` at least as wide as `bits` (the widest if none is).
int BitLevelIndex(const std::vector<int>& levels, int bits) {
  bits = EffectiveBits(bits);
  const int n = static_cast<int>(levels.size());
  for (int i = 0; i < n; ++i) {
    if (bits <= levels[i]) return i;
  }
  return n - 1;
}

}  // namespace

Environment::Environment(const v1::ModelDescription& model, double target_size)
    : model_(model), target_size_(target_size), bit_levels_(OfferedBitWidths(model, target_size)) {
  const int n = model_.layers_size();
  double max_in = 1, max_out = 1, max_kernel = 1, max_sensitivity = 0;
  double params = 0, flops = 0;
  for (const auto& layer : model_.layers()) {
    max_in = std::max(max_in, std::log1p(static_cast<double>(layer.in_features())));
    max_out = std::max(max_out, std::log1p(static_cast<double>(layer.out_features())));
    max_kernel = std::max(max_kernel, std::log1p(static_cast<double>(layer.kernel_elements())));
    max_sensitivity = std::max(max_sensitivity, layer.sensitivity());
    params += static_cast<double>(layer.params());
    flops += static_cast<double>(layer.flops());
  }
  bytes_share_from_.assign(n + 1, 0.0);
  for (int i = n - 1; i >= 0; --i) {
    bytes_share_from_[i] =
        bytes_share_from_[i + 1] + SafeDivide(static_cast<double>(model_.layers(i).params()), params);
  }
  for (int i = 0; i < n; ++i) {
    const v1::LayerInfo& layer = model_.layers(i);
    StateVector f{};
    f[0] = n > 1 ? static_cast<float>(i) / static_cast<float>(n - 1) : 0.f;
    f[1] = layer.kind() == "conv2d" ? 1.f : 0.f;
    f[2] = Clamp01(std::log1p(static_cast<double>(layer.in_features())) / max_in);
    f[3] = Clamp01(std::log1p(static_cast<double>(layer.out_features())) / max_out);
    f[4] = Clamp01(std::log1p(static_cast<double>(layer.kernel_elements())) / max_kernel);
    f[5] = Clamp01(SafeDivide(static_cast<double>(layer.params()), params));
    double flops_share = SafeDivide(static_cast<double>(layer.flops()), flops);
    f[6] = Clamp01(flops_share);
    f[7] = Clamp01(layer.latency_share() > 0 ? layer.latency_share() : flops_share);
    f[8] = Clamp01(SafeDivide(layer.sensitivity(), max_sensitivity));
    f[9] = max_sensitivity > 0 ? 1.f : 0.f;
    f[10] = layer.prunable() ? 1.f : 0.f;
    static_features_.push_back(f);
  }
}

void Environment::Reset() {
  actions_.clear();
  previous_ = {};
}

double Environment::RatioSoFar() const { return EstimateSizeRatio(model_, actions_); }

double Environment::RatioWithRestCompressed(const v1::LayerAction& current, double rest_prune) const {
  std::vector<v1::LayerAction> all = actions_;
  all.push_back(current);
  for (int i = static_cast<int>(all.size()); i < layers(); ++i) {
    v1::LayerAction strongest;
    strongest.set_name(model_.layers(i).name());
    strongest.set_bits(bit_levels_[0]);
    strongest.set_prune(model_.layers(i).prunable() ? rest_prune : 0.0);
    all.push_back(strongest);
  }
  return EstimateSizeRatio(model_, all);
}

double Environment::SmallestFittingPrune(const v1::LayerAction& a, double rest_prune) const {
  if (RatioWithRestCompressed(a, rest_prune) <= target_size_) return a.prune();
  v1::LayerAction strongest = a;
  strongest.set_prune(kMaxPrune);
  if (RatioWithRestCompressed(strongest, rest_prune) > target_size_) return kMaxPrune;
  double lo = a.prune(), hi = kMaxPrune;  // lo does not fit, hi does
  for (int step = 0; step < 30 && hi - lo > 1e-4; ++step) {
    v1::LayerAction mid = a;
    mid.set_prune((lo + hi) / 2);
    if (RatioWithRestCompressed(mid, rest_prune) > target_size_) {
      lo = mid.prune();
    } else {
      hi = mid.prune();
    }
  }
  return hi;
}

StateVector Environment::State() const {
  const int i = std::min(static_cast<int>(actions_.size()), layers() - 1);
  StateVector s = static_features_[i];
  double ratio = RatioSoFar();
  s[11] = Clamp01(1.0 - ratio);
  s[12] = Clamp01(bytes_share_from_[i]);
  s[13] = Clamp01(ratio - target_size_);
  for (int k = 0; k < kActionSize; ++k) s[14 + k] = previous_[k];
  return s;
}

double Environment::PruneMidpoint(int index, int bits) const {
  // Earlier layers as chosen so far (unchanged if the episode has not reached them), this
  // one at `bits`, later ones at the lowest width; all prunable ones from here at `prune`.
  auto ratio_at = [&](double prune) {
    std::vector<v1::LayerAction> all;
    for (int i = 0; i < layers(); ++i) {
      v1::LayerAction a;
      if (i < index && i < static_cast<int>(actions_.size())) {
        a = actions_[i];
      } else if (i < index) {
        a.set_bits(32);
      } else {
        a.set_bits(i == index ? bits : bit_levels_[0]);
        a.set_prune(model_.layers(i).prunable() ? prune : 0.0);
      }
      a.set_name(model_.layers(i).name());
      all.push_back(a);
    }
    return EstimateSizeRatio(model_, all);
  };
  double fair = kClampPlanPrune;
  if (ratio_at(0.0) <= target_size_) {
    fair = 0.0;
  } else if (ratio_at(kClampPlanPrune) <= target_size_) {
    double lo = 0.0, hi = kClampPlanPrune;  // lo does not fit, hi does
    for (int step = 0; step < 30 && hi - lo > 1e-4; ++step) {
      const double mid = (lo + hi) / 2;
      if (ratio_at(mid) > target_size_) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    fair = hi;
  }
  return std::max(fair, kMaxPrune / 2);
}

v1::LayerAction Environment::Decode(int index, const ActionVector& action) const {
  const v1::LayerInfo& layer = model_.layers(index);
  v1::LayerAction a;
  a.set_name(layer.name());
  const int n = static_cast<int>(bit_levels_.size());
  int level = std::min(n - 1, static_cast<int>(Clamp01(action[1]) * n));
  a.set_bits(bit_levels_[level]);
  if (layer.prunable()) {
    const double u = Clamp01(action[0]), mid = PruneMidpoint(index, a.bits());
    a.set_prune(u <= 0.5 ? 2 * u * mid : mid + (2 * u - 1) * (kMaxPrune - mid));
  }
  a.set_distill(Clamp01(action[2]));
  return a;
}

ActionVector Environment::Encode(int index, const v1::LayerAction& action) const {
  ActionVector v;
  const int level = BitLevelIndex(bit_levels_, action.bits());
  v[0] = 0.f;
  if (model_.layers(index).prunable()) {
    const double p = action.prune(), mid = PruneMidpoint(index, bit_levels_[level]);
    v[0] = Clamp01(p <= mid ? p / (2 * mid) : 0.5 + (p - mid) / (2 * (kMaxPrune - mid)));
  }
  v[1] = (static_cast<float>(level) + 0.5f) / static_cast<float>(bit_levels_.size());
  v[2] = Clamp01(action.distill());
  return v;
}

ActionVector Environment::Step(const ActionVector& raw) {
  const int i = static_cast<int>(actions_.size());
  v1::LayerAction a = Decode(i, raw);
  if (RatioWithRestCompressed(a, kClampPlanPrune) > target_size_) {
    // Too gentle for the layers left to make up: first the lowest width, then the
    // smallest prune ratio that keeps the target reachable with the later layers
    // pruned at most kClampPlanPrune; when no ratio here can, with them at kMaxPrune.
    a.set_bits(bit_levels_[0]);
    if (model_.layers(i).prunable()) {
      v1::LayerAction strongest = a;
      strongest.set_prune(kMaxPrune);
      const bool fits_with_plan = RatioWithRestCompressed(strongest, kClampPlanPrune) <= target_size_;
      a.set_prune(SmallestFittingPrune(a, fits_with_plan ? kClampPlanPrune : kMaxPrune));
    }
  }
  previous_ = Encode(i, a);  // before the push: the midpoint is the one this layer saw
  actions_.push_back(a);
  return previous_;
}

v1::Policy Environment::ToPolicy() const {
  std::vector<v1::LayerAction> actions = actions_;
  if (EstimateSizeRatio(model_, actions) > target_size_) {
    ClampToSizeTarget(model_, target_size_, &actions);
  }
  return agent::ToPolicy(actions);
}

absl::StatusOr<std::vector<Transition>> Environment::Replay(const v1::Policy& policy) const {
  auto actions = ResolvePolicy(policy, model_);
  if (!actions.ok()) return actions.status();
  Environment walk = *this;
  walk.Reset();
  std::vector<Transition> transitions;
  for (int i = 0; i < layers(); ++i) {
    Transition t;
    t.state = walk.State();
    t.action = walk.Encode(i, (*actions)[i]);
    walk.actions_.push_back((*actions)[i]);
    walk.previous_ = t.action;
    t.last = i + 1 == layers();
    t.next_state = t.last ? t.state : walk.State();
    transitions.push_back(t);
  }
  return transitions;
}

}  // namespace shrink::agent
