#include "common/policy.h"

#include <google/protobuf/util/json_util.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace shrink {

absl::StatusOr<v1::Policy> ParsePolicyJson(const std::string& json) {
  v1::Policy policy;
  google::protobuf::util::JsonParseOptions options;
  auto status = google::protobuf::util::JsonStringToMessage(json, &policy, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("policy JSON: ", status.ToString()));
  }
  if (policy.layers_size() > 0 && policy.has_uniform()) {
    return absl::InvalidArgumentError("policy JSON: give either \"layers\" or \"uniform\", not both");
  }
  if (policy.layers_size() == 0 && !policy.has_uniform()) {
    return absl::InvalidArgumentError("policy JSON: needs \"layers\" or \"uniform\"");
  }
  return policy;
}

std::string PolicyToJson(const v1::Policy& policy) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(policy, &out, options);
  return out;
}

int EffectiveBits(int bits) { return bits == 0 ? kFullPrecisionBits : bits; }

absl::Status ValidateAction(const v1::LayerAction& action) {
  const std::string layer = action.name().empty() ? "uniform" : action.name();
  if (!(action.prune() >= 0.0 && action.prune() <= kMaxPrune)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "layer %s: prune %g is outside [0, %g]", layer, action.prune(), kMaxPrune));
  }
  int bits = EffectiveBits(action.bits());
  if (!(bits == kFullPrecisionBits || (bits >= kMinBits && bits <= 16))) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "layer %s: bits %d is outside %d..16 (or 32 for unchanged)", layer, bits, kMinBits));
  }
  if (!(action.distill() >= 0.0 && action.distill() <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "layer %s: distill %g is outside [0, 1]", layer, action.distill()));
  }
  return absl::OkStatus();
}

int64_t StoredWeightBytes(int64_t rows, int64_t cols, int bits) {
  bits = EffectiveBits(bits);
  const int64_t count = rows * cols;
  if (bits >= kMinBits && bits <= 7) {
    const int64_t groups = (cols + kQuantGroupSize - 1) / kQuantGroupSize;
    return (count * bits + 7) / 8 + 2 * 2 * rows * groups;
  }
  if (bits == 8) return count + 4 * rows;
  if (bits <= 16) return 2 * count;
  return 4 * count;
}

absl::StatusOr<std::vector<v1::LayerAction>> ResolvePolicy(const v1::Policy& policy,
                                                           const v1::ModelDescription& model) {
  std::vector<v1::LayerAction> out;
  if (policy.layers_size() == 0) {
    if (auto s = ValidateAction(policy.uniform()); !s.ok()) return s;
    for (const auto& layer : model.layers()) {
      v1::LayerAction action = policy.uniform();
      action.set_name(layer.name());
      if (!layer.prunable()) action.set_prune(0.0);  // uniform recipes leave output layers whole
      out.push_back(action);
    }
    return out;
  }
  std::map<std::string, const v1::LayerAction*> by_name;
  for (const auto& action : policy.layers()) {
    if (!by_name.emplace(action.name(), &action).second) {
      return absl::InvalidArgumentError(absl::StrCat("policy names layer ", action.name(), " twice"));
    }
  }
  for (const auto& layer : model.layers()) {
    auto it = by_name.find(layer.name());
    if (it == by_name.end()) {
      return absl::InvalidArgumentError(absl::StrCat("policy has no action for layer ", layer.name()));
    }
    const v1::LayerAction& action = *it->second;
    if (auto s = ValidateAction(action); !s.ok()) return s;
    if (!layer.prunable() && action.prune() > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer ", layer.name(), " cannot be pruned (it produces the model's outputs)"));
    }
    out.push_back(action);
    by_name.erase(it);
  }
  if (!by_name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy names unknown layer ", by_name.begin()->first));
  }
  return out;
}

std::string PolicySummary(const v1::Policy& policy) {
  auto one = [](const v1::LayerAction& a) {
    return absl::StrFormat("p%.2f/%db", a.prune(), EffectiveBits(a.bits()));
  };
  if (policy.layers_size() == 0) return absl::StrCat("uniform ", one(policy.uniform()));
  std::string out;
  for (const auto& a : policy.layers()) {
    if (!out.empty()) out += " ";
    absl::StrAppend(&out, a.name(), " ", one(a));
  }
  return out;
}

}  // namespace shrink
