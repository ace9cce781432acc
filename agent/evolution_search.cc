// Evolutionary search: a small steady-state genetic algorithm over per-layer
// actions. It starts with a random population (as RandomSearch draws it),
// keeps the best-rewarded policies it has seen, and proposes offspring of
// tournament winners: optional uniform crossover, then a sparse mutation
// (a Gaussian prune nudge or a one-level bit-width move), then the size clamp.
// It is the cheap learning baseline the DDPG agent has to beat; every draw
// comes from one generator seeded by the job's seed, so a seed and a sequence
// of observations fix the proposals.
#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "agent/budget.h"
#include "agent/environment.h"
#include "agent/search.h"
#include "common/policy.h"

namespace shrink::agent {
namespace {

// Population size bounds: enough diversity to select from, yet small enough
// that a short budget still spends most evaluations on offspring.
constexpr int kMinPopulation = 4;
constexpr int kMaxPopulation = 16;
// Tournament size: 3 is mild pressure; it drops to the kept count when fewer.
constexpr int kTournamentSize = 3;
// Chance that an offspring mixes two parents before mutating.
constexpr double kCrossoverProbability = 0.5;
// Standard deviation of a prune nudge.
constexpr double kPruneSigma = 0.1;
// Fresh draws tried before a duplicate of an earlier proposal is accepted
// (tight size targets can leave few distinct policies).
constexpr int kDuplicateRetries = 8;

// One evaluated policy the population keeps.
struct Member {
  std::vector<v1::LayerAction> actions;  // one per layer, in model order
  double reward = 0;
};

// Index of `bits` among `levels`; unset or unknown widths count as the widest.
int BitLevel(const std::vector<int>& levels, int bits) {
  bits = EffectiveBits(bits);
  for (size_t i = 0; i < levels.size(); ++i) {
    if (levels[i] == bits) return static_cast<int>(i);
  }
  return static_cast<int>(levels.size()) - 1;
}

class EvolutionSearch : public Search {
 public:
  explicit EvolutionSearch(const SearchContext& context)
      : context_(context),
        bit_levels_(OfferedBitWidths(context.model, context.goal.target_size())),
        population_size_(std::clamp(context.budget / 4, kMinPopulation, kMaxPopulation)),
        rng_(context.seed) {}

  std::string name() const override { return "evolution"; }

  v1::Policy Propose() override {
    // Random until the initial population is out, and while nothing has come
    // back to select from (every early candidate may still be running).
    bool breed = proposals_made_ >= population_size_ && !kept_.empty();
    ++proposals_made_;
    std::vector<v1::LayerAction> actions;
    for (int attempt = 0; attempt <= kDuplicateRetries; ++attempt) {
      actions = breed ? Offspring() : RandomActions();
      ClampToSizeTarget(context_.model, context_.goal.target_size(), &actions);
      if (!proposed_.count(Key(actions))) break;
    }
    proposed_.insert(Key(actions));
    return ToPolicy(actions);
  }

  void Observe(const v1::Policy& policy, const v1::Evaluation&, double reward) override {
    // A NaN would break the ordering; a policy that does not fit the model
    // cannot be bred from. Neither comes from this search's own proposals.
    if (!std::isfinite(reward)) return;
    auto actions = ResolvePolicy(policy, context_.model);
    if (!actions.ok()) return;
    // Insert after every member with an equal or higher reward, so ties keep
    // the earlier arrival ahead; then drop the worst beyond the population.
    auto position = std::upper_bound(
        kept_.begin(), kept_.end(), reward,
        [](double value, const Member& member) { return value > member.reward; });
    kept_.insert(position, Member{*std::move(actions), reward});
    if (static_cast<int>(kept_.size()) > population_size_) kept_.resize(population_size_);
  }

 private:
  // Independent random actions, from the same distribution RandomSearch uses.
  std::vector<v1::LayerAction> RandomActions() {
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    std::uniform_int_distribution<int> bit_level(0, static_cast<int>(bit_levels_.size()) - 1);
    std::vector<v1::LayerAction> actions;
    for (const auto& layer : context_.model.layers()) {
      v1::LayerAction action;
      action.set_name(layer.name());
      // Square the draw: most useful prune ratios are small.
      double u = unit(rng_);
      action.set_prune(layer.prunable() ? kMaxPrune * u * u : 0.0);
      action.set_bits(bit_levels_[bit_level(rng_)]);
      action.set_distill(kBaselineDistill);
      actions.push_back(action);
    }
    return actions;
  }

  // The best of a few distinct random members of the kept population. The
  // population is sorted best first, so the lowest index drawn wins (which
  // also breaks reward ties towards the earlier arrival).
  const Member& TournamentWinner() {
    int kept = static_cast<int>(kept_.size());
    int size = std::min(kTournamentSize, kept);
    std::vector<int> indices(kept);
    for (int i = 0; i < kept; ++i) indices[i] = i;
    // A partial Fisher-Yates shuffle draws `size` distinct entrants.
    int best = kept;
    for (int i = 0; i < size; ++i) {
      std::uniform_int_distribution<int> pick(i, kept - 1);
      std::swap(indices[i], indices[pick(rng_)]);
      best = std::min(best, indices[i]);
    }
    return kept_[best];
  }

  // A child of one or two tournament winners, mutated; not yet clamped.
  std::vector<v1::LayerAction> Offspring() {
    std::bernoulli_distribution coin(0.5);
    std::vector<v1::LayerAction> child = TournamentWinner().actions;
    if (kept_.size() >= 2 && std::bernoulli_distribution(kCrossoverProbability)(rng_)) {
      const std::vector<v1::LayerAction>& other = TournamentWinner().actions;
      for (size_t i = 0; i < child.size(); ++i) {
        if (coin(rng_)) child[i] = other[i];
      }
    }
    Mutate(&child);
    return child;
  }

  // Mutates each layer with probability 1/layers, and at least one layer, so
  // a child stays close to its parents but is never an unchanged copy.
  void Mutate(std::vector<v1::LayerAction>* actions) {
    int layers = static_cast<int>(actions->size());
    std::bernoulli_distribution mutate_layer(1.0 / layers);
    bool any = false;
    for (int i = 0; i < layers; ++i) {
      if (mutate_layer(rng_)) {
        MutateLayer(i, &(*actions)[i]);
        any = true;
      }
    }
    if (!any) {
      std::uniform_int_distribution<int> layer(0, layers - 1);
      int i = layer(rng_);
      MutateLayer(i, &(*actions)[i]);
    }
  }

  // Either nudges the prune ratio (prunable layers only) or moves the bit
  // width one level along the offered widths (OfferedBitWidths).
  void MutateLayer(int index, v1::LayerAction* action) {
    std::bernoulli_distribution coin(0.5);
    const int levels = static_cast<int>(bit_levels_.size());
    if (context_.model.layers(index).prunable() && (levels < 2 || coin(rng_))) {
      std::normal_distribution<double> step(0.0, kPruneSigma);
      action->set_prune(std::clamp(action->prune() + step(rng_), 0.0, kMaxPrune));
      return;
    }
    if (levels < 2) return;  // one width, nothing to prune: the layer has no other setting
    int level = BitLevel(bit_levels_, action->bits());
    if (level == 0) {
      level = 1;
    } else if (level == levels - 1) {
      level = levels - 2;
    } else {
      level += coin(rng_) ? 1 : -1;
    }
    action->set_bits(bit_levels_[level]);
  }

  // Identifies a proposal for the duplicate check; the actions carry no map
  // fields, so their serialisation is deterministic.
  static std::string Key(const std::vector<v1::LayerAction>& actions) {
    return ToPolicy(actions).SerializeAsString();
  }

  SearchContext context_;
  std::vector<int> bit_levels_;  // OfferedBitWidths for the job, ascending
  int population_size_;
  std::mt19937_64 rng_;
  int proposals_made_ = 0;
  std::vector<Member> kept_;       // best `population_size_` results, best first
  std::set<std::string> proposed_;  // every policy proposed so far
};

}  // namespace

std::unique_ptr<Search> NewEvolutionSearch(const SearchContext& context) {
  return std::make_unique<EvolutionSearch>(context);
}

}  // namespace shrink::agent
