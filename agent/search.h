// The policy-search interface every search method implements (uniform,
// random, evolution; the learning agent plugs in here too).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "shrink/v1/types.pb.h"

namespace shrink::agent {

// What a search knows about its job when it starts.
struct SearchContext {
  v1::ModelDescription model;  // the agent's state space: layers, shapes, params
  v1::Goal goal;               // target size and minimum retention
  int budget = 0;              // evaluations the job may spend
  uint64_t seed = 0;           // all randomness derives from it
};

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
};

// Builds the search named `name` ("uniform" | "random" | "evolution"); InvalidArgument
// naming the method otherwise.
absl::StatusOr<std::unique_ptr<Search>> MakeSearch(const std::string& name,
                                                   const SearchContext& context);

}  // namespace shrink::agent
