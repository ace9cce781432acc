#include "agent/search.h"

#include "absl/strings/str_cat.h"

namespace shrink::agent {

std::unique_ptr<Search> NewUniformSearch(const SearchContext& context);
std::unique_ptr<Search> NewRandomSearch(const SearchContext& context);
std::unique_ptr<Search> NewEvolutionSearch(const SearchContext& context);
absl::StatusOr<std::unique_ptr<Search>> NewDdpgSearch(const SearchContext& context);

absl::StatusOr<std::unique_ptr<Search>> MakeSearch(const std::string& name,
                                                   const SearchContext& context) {
  if (context.model.layers_size() == 0) {
    return absl::InvalidArgumentError("search: the model description has no layers");
  }
  if (name == "ddpg") return NewDdpgSearch(context);
  if (!context.init_state.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "search '", name, "' cannot start from another job's agent (only ddpg can)"));
  }
  if (name == "uniform") return NewUniformSearch(context);
  if (name == "random") return NewRandomSearch(context);
  if (name == "evolution") return NewEvolutionSearch(context);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown search '", name, "' (expected ddpg, uniform, random or evolution)"));
}

}  // namespace shrink::agent
