// The "manual" baseline: the same action for every layer, as a human recipe
// would apply it. It walks the uniform settings that fit the size target,
// from the gentlest to the most aggressive, spread over the budget.
#include <algorithm>

#include "agent/budget.h"
#include "agent/search.h"
#include "common/policy.h"

namespace shrink::agent {
namespace {

class UniformSearch : public Search {
 public:
  explicit UniformSearch(const SearchContext& context) : context_(context) {
    // Every uniform (prune, bits) setting that fits, gentlest first.
    std::vector<std::pair<double, std::vector<v1::LayerAction>>> fitting;
    for (int bits : {32, 16, 8, 4}) {
      for (int step = 0; step <= 18; ++step) {
        double prune = 0.05 * step;
        std::vector<v1::LayerAction> actions;
        for (const auto& layer : context.model.layers()) {
          v1::LayerAction a;
          a.set_name(layer.name());
          a.set_bits(bits);
          a.set_prune(layer.prunable() ? prune : 0.0);
          a.set_distill(kBaselineDistill);
          actions.push_back(a);
        }
        double ratio = EstimateSizeRatio(context.model, actions);
        if (ratio <= context.goal.target_size()) fitting.emplace_back(ratio, actions);
      }
    }
    std::stable_sort(fitting.begin(), fitting.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    // Spread the budget over the list, always starting at the gentlest.
    int n = static_cast<int>(fitting.size());
    int take = std::max(1, std::min(n, context.budget));
    for (int i = 0; i < take && n > 0; ++i) {
      int index = take == 1 ? 0 : static_cast<int>(static_cast<double>(i) * (n - 1) / (take - 1));
      plan_.push_back(ToPolicy(fitting[index].second));
    }
    if (plan_.empty()) {
      // Nothing uniform fits: propose the most aggressive uniform setting;
      // its reward records how far it misses the target.
      std::vector<v1::LayerAction> actions;
      for (const auto& layer : context.model.layers()) {
        v1::LayerAction a;
        a.set_name(layer.name());
        a.set_bits(kMinBits);
        a.set_prune(layer.prunable() ? kMaxPrune : 0.0);
        a.set_distill(kBaselineDistill);
        actions.push_back(a);
      }
      plan_.push_back(ToPolicy(actions));
    }
  }

  std::string name() const override { return "uniform"; }

  v1::Policy Propose() override {
    // Past the plan (budget larger than the grid), cycle through it again:
    // re-measuring a setting only refines its latency figure.
    v1::Policy policy = plan_[next_ % plan_.size()];
    ++next_;
    return policy;
  }

  void Observe(const v1::Policy&, const v1::Evaluation&, double) override {}

 private:
  SearchContext context_;
  std::vector<v1::Policy> plan_;
  size_t next_ = 0;
};

}  // namespace

std::unique_ptr<Search> NewUniformSearch(const SearchContext& context) {
  return std::make_unique<UniformSearch>(context);
}

}  // namespace shrink::agent
