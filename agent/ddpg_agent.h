// The DDPG learner behind the "ddpg" search (AMC-style): an actor that maps a
// layer's state to its action, a critic that scores (state, action), target
// copies of both updated softly, a replay buffer of per-layer transitions, and
// a moving-average reward baseline. Torch stays inside ddpg_agent.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/environment.h"

namespace shrink::agent {

// Hyper-parameters; the defaults suit budgets of tens to hundreds of episodes.
struct DdpgOptions {
  int hidden = 64;                  // units in each of the two hidden layers
  double actor_lr = 1e-3;           // Adam step of the actor
  double critic_lr = 3e-3;          // Adam step of the critic
  double tau = 0.05;                // soft target update: target += tau * (online - target)
  double discount = 1.0;            // the reward comes at the episode's end (AMC uses 1)
  int batch = 64;                   // transitions per gradient step
  int replay_capacity = 20000;      // transitions kept
  int updates_per_layer = 2;        // gradient steps per observed layer transition
  double noise_sigma = 0.5;         // initial exploration noise (truncated normal)
  double noise_decay = 0.93;        // sigma multiplier per explored episode
  double noise_min = 0.02;          // sigma floor
  double baseline_momentum = 0.9;   // moving-average reward baseline
};

// Thread-compatible. Every random draw comes from the agent's own generator,
// so a seed and a sequence of calls fix every proposal and every update.
class DdpgAgent {
 public:
  DdpgAgent(const DdpgOptions& options, uint64_t seed);
  ~DdpgAgent();
  DdpgAgent(const DdpgAgent&) = delete;
  DdpgAgent& operator=(const DdpgAgent&) = delete;

  // The actor's action for `state`; with `explore`, perturbed by truncated
  // normal noise of the current sigma (kept inside [0, 1]).
  ActionVector Act(const StateVector& state, bool explore);
  // A uniformly random action (warm-up episodes).
  ActionVector RandomAction();
  // One more explored episode: sigma decays.
  void DecayNoise();
  // Stores an episode's transitions with `reward` minus the moving baseline,
  // then moves the baseline towards `reward`.
  void Remember(const std::vector<Transition>& episode, double reward);
  // `steps` gradient steps of critic and actor on replayed minibatches, each
  // followed by a soft update of the targets; no-op while the buffer is empty.
  void Train(int steps);

  int transitions() const;
  double sigma() const;
  double baseline() const;

  // Everything learned and every generator: networks, targets, optimizers,
  // replay buffer, baseline, sigma and the RNG, as opaque bytes.
  absl::StatusOr<std::string> Save() const;
  // Restores what Save wrote. With `networks_only` (transfer to another
  // model), only the four networks and the optimizers are taken.
  absl::Status Load(const std::string& bytes, bool networks_only);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shrink::agent
