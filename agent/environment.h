// The agent's environment, in the style of AMC/HAQ: an episode walks the
// model's layers in order; at each layer the agent sees a normalized state
// and picks one action (prune ratio, bit width, distillation strength). The
// size target is a hard constraint: each action is clamped so that the target
// stays reachable with the layers still to come, so every finished episode is
// a policy that fits the budget (when any policy can).
#pragma once

#include <array>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/budget.h"
#include "shrink/v1/types.pb.h"

namespace shrink::agent {

// State features per layer (see Environment::State for their meaning).
inline constexpr int kStateSize = 17;
// Action dimensions per layer: prune, bits, distill; each in [0, 1].
inline constexpr int kActionSize = 3;

using StateVector = std::array<float, kStateSize>;
using ActionVector = std::array<float, kActionSize>;

// One layer's step of a finished episode.
struct Transition {
  StateVector state;
  ActionVector action;  // as applied (after clamping), normalized
  StateVector next_state;
  bool last = false;    // the episode's final layer
};

// Walks one model's layers; cheap to copy. Not thread-safe.
class Environment {
 public:
  Environment(const v1::ModelDescription& model, double target_size);

  int layers() const { return model_.layers_size(); }
  // Starts a new episode at the first layer.
  void Reset();
  // True once every layer has an action.
  bool Done() const { return static_cast<int>(actions_.size()) >= layers(); }
  // The current layer's normalized state, each feature in [0, 1]:
  //  0 layer index / (layers - 1)     1 conv (1) or linear (0)
  //  2 log in dims / max              3 log out dims / max
  //  4 log kernel elements / max      5 share of the model's params
  //  6 share of the model's FLOPs     7 measured latency share (FLOPs share if not measured)
  //  8 sensitivity / max sensitivity  9 sensitivity measured (1) or not (0)
  // 10 prunable                      11 fraction of the model's bytes removed so far
  // 12 fraction of bytes in this and later layers
  // 13 fraction of the model's bytes that must still be removed to meet the target
  // 14-16 the previous layer's action (zeros at the first layer)
  StateVector State() const;
  // Applies `raw` (each in [0, 1]) to the current layer, clamped so that the
  // target stays reachable; returns the action as applied, normalized.
  ActionVector Step(const ActionVector& raw);
  // The actions chosen so far, in layer order.
  const std::vector<v1::LayerAction>& actions() const { return actions_; }
  // The finished episode as a policy; if the clamp could not meet the target
  // (no policy can), the uniform clamp gets the last word.
  v1::Policy ToPolicy() const;
  // Re-walks a finished policy (one action per layer, as ToPolicy made it)
  // and returns its transitions; InvalidArgument when it does not fit the model.
  absl::StatusOr<std::vector<Transition>> Replay(const v1::Policy& policy) const;

  // The layer action a normalized action stands for at layer `index`, after the episode's
  // actions so far. The prune action is piecewise linear: 0 -> no pruning, 0.5 ->
  // PruneMidpoint, 1 -> kMaxPrune; so at a loose target it is prune = 0.9 * action.
  v1::LayerAction Decode(int index, const ActionVector& action) const;
  // The normalized action that decodes to `action` at layer `index` (bit widths map to the
  // centre of their level's interval; a width not offered to the nearest wider one offered).
  ActionVector Encode(int index, const v1::LayerAction& action) const;
  // The prune ratio a prune action of 0.5 stands for at layer `index` with `bits`: the
  // ratio that, given to this and every later prunable layer (later ones at the lowest
  // width), spends exactly what is left of the size budget, capped at kClampPlanPrune; and
  // at least kMaxPrune / 2. When the target binds, the actor's neutral output and the
  // warm-up's median then spread the cut evenly, as a uniform recipe would, and learning
  // moves away from there; with an absolute scale they were too gentle early and the clamp
  // made the later layers pay.
  double PruneMidpoint(int index, int bits) const;
  // The bit widths actions choose among (OfferedBitWidths for the model and target).
  const std::vector<int>& bit_levels() const { return bit_levels_; }

 private:
  // Predicted size ratio with the chosen actions, `current` at the current
  // layer and the later layers at the lowest width, prunable ones at `rest_prune`.
  double RatioWithRestCompressed(const v1::LayerAction& current, double rest_prune) const;
  // The smallest prune ratio for `a` (already at the lowest width) that keeps the target
  // reachable with the later layers at `rest_prune`; kMaxPrune when none does.
  double SmallestFittingPrune(const v1::LayerAction& a, double rest_prune) const;
  // Predicted size ratio with the chosen actions and later layers unchanged.
  double RatioSoFar() const;

  v1::ModelDescription model_;
  double target_size_;
  std::vector<int> bit_levels_;
  std::vector<v1::LayerAction> actions_;
  ActionVector previous_{};
  // Per-layer constants of the state, computed once.
  std::vector<StateVector> static_features_;
  std::vector<double> bytes_share_from_;  // share of original bytes in layers >= i
};

}  // namespace shrink::agent
