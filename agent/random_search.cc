// Random search: independent random actions per layer, clamped to the size
// target. The floor every learning method must beat.
#include <random>

#include "agent/budget.h"
#include "agent/search.h"
#include "common/policy.h"

namespace shrink::agent {
namespace {

class RandomSearch : public Search {
 public:
  explicit RandomSearch(const SearchContext& context)
      : context_(context),
        bit_levels_(OfferedBitWidths(context.model, context.goal.target_size())),
        rng_(context.seed) {}

  std::string name() const override { return "random"; }

  v1::Policy Propose() override {
    std::uniform_real_distribution<double> prune(0.0, kMaxPrune);
    std::uniform_int_distribution<int> bits_choice(0, static_cast<int>(bit_levels_.size()) - 1);
    std::vector<v1::LayerAction> actions;
    for (const auto& layer : context_.model.layers()) {
      v1::LayerAction a;
      a.set_name(layer.name());
      // Square the draw: most useful prune ratios are small.
      double u = prune(rng_) / kMaxPrune;
      a.set_prune(layer.prunable() ? kMaxPrune * u * u : 0.0);
      a.set_bits(bit_levels_[bits_choice(rng_)]);
      a.set_distill(kBaselineDistill);
      actions.push_back(a);
    }
    ClampToSizeTarget(context_.model, context_.goal.target_size(), &actions);
    return ToPolicy(actions);
  }

  void Observe(const v1::Policy&, const v1::Evaluation&, double) override {}

 private:
  SearchContext context_;
  std::vector<int> bit_levels_;  // OfferedBitWidths for the job
  std::mt19937_64 rng_;
};

}  // namespace

std::unique_ptr<Search> NewRandomSearch(const SearchContext& context) {
  return std::make_unique<RandomSearch>(context);
}

}  // namespace shrink::agent
