#include "agent/search.h"

#include "absl/strings/str_cat.h"

namespace shrink::agent {

std::unique_ptr<Search> NewUniformSearch(const SearchContext& context);
std::unique_ptr<Search> NewRandomSearch(const SearchContext& context);
std::unique_ptr<Search> NewEvolutionSearch(const SearchContext& context);

absl::StatusOr<std::unique_ptr<Search>> MakeSearch(const std::string& name,
                                                   const SearchContext& context) {
  if (context.model.layers_size() == 0) {
    return absl::InvalidArgumentError("search: the model description has no layers");
  }
  if (name == "uniform") return NewUniformSearch(context);
  if (name == "random") return NewRandomSearch(context);
  if (name == "evolution") return NewEvolutionSearch(context);
  if (name == "ddpg") {
    return absl::UnimplementedError(absl::StrCat(
        "search '", name, "' is not in this build yet; use uniform, random or evolution"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown search '", name, "' (expected uniform, random or evolution)"));
}

}  // namespace shrink::agent
