// The policy-search interface every search method implements (uniform,
// random, evolution and the DDPG agent).
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shrink/v1/types.pb.h"

namespace shrink::agent {

// What a search knows about its job when it starts.
struct SearchContext {
  v1::ModelDescription model;  // the agent's state space: layers, shapes, params
  v1::Goal goal;               // target size and minimum retention
  int budget = 0;              // evaluations the job may spend
  uint64_t seed = 0;           // all randomness derives from it
  // Transfer: a checkpoint (SaveState bytes) of the same method from another
  // job to start from; empty = start fresh. Only learning methods accept one.
  std::string init_state;
};

// Distillation strength the baselines (uniform, random, evolution) give every layer: they
// search prune ratios and bits only, and distill at full strength as a human recipe would.
// DDPG chooses each layer's strength itself.
inline constexpr double kBaselineDistill = 1.0;

// Proposes policies and learns from their measured results.
// Thread-compatible: the scheduler serialises calls under its own lock.
// Propose may be called several times before any Observe (candidates run in
// parallel), and results arrive in any order.
class Search {
 public:
  virtual ~Search() = default;
  // The method's name as given to --search.
  virtual std::string name() const = 0;
  // The next policy to evaluate; always one action per layer of the model,
  // already clamped to the size budget.
  virtual v1::Policy Propose() = 0;
  // The measured result of a policy this search proposed.
  virtual void Observe(const v1::Policy& policy, const v1::Evaluation& evaluation,
                       double reward) = 0;
  // What a restarted coordinator needs to continue this search without
  // replaying it: opaque bytes, or empty when replaying the stored results
  // (the same proposals in the same order) rebuilds it exactly.
  virtual absl::StatusOr<std::string> SaveState() const { return std::string(); }
  // Restores SaveState bytes written by this method for the same job.
  virtual absl::Status RestoreState(const std::string& bytes) {
    return absl::UnimplementedError(name() + " search keeps no checkpoint");
  }
  // Proposals made so far (kept across SaveState / RestoreState).
  virtual int64_t proposals() const { return -1; }
};

// Builds the search named `name` ("ddpg" | "uniform" | "random" | "evolution");
// InvalidArgument naming the method otherwise, or when `context.init_state`
// is set for a method that cannot start from one (or the bytes do not load).
absl::StatusOr<std::unique_ptr<Search>> MakeSearch(const std::string& name,
                                                   const SearchContext& context);

}  // namespace shrink::agent
