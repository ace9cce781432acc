#include "worker/transformer_compress.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/policy.h"
#include "common/status.h"
#include "worker/int8_linear.h"

namespace shrink::worker {
namespace {

const TransformerLayerGroup* FindGroup(const std::vector<TransformerLayerGroup>& groups, const std::string& name) {
  for (const auto& group : groups) {
    if (group.name == name) return &group;
  }
  return nullptr;
}

// Row indices of the kept heads: head h owns rows [h * d, (h + 1) * d).
torch::Tensor HeadRows(const torch::Tensor& heads, int64_t head_dim) {
  return (heads.unsqueeze(1) * head_dim + torch::arange(head_dim, torch::kInt64)).flatten();
}

}  // namespace

torch::Tensor UnitImportance(const TransformerWeights& w, const TransformerLayerGroup& group) {
  torch::NoGradGuard no_grad;
  const std::string b = absl::StrCat("blocks.", group.block, ".");
  auto abs = [&](const std::string& name) { return w.tensors.at(name).to(torch::kFloat64).abs(); };
  if (group.kind == "attention") {
    const int64_t d = w.config.head_dim();
    torch::Tensor rows = abs(b + "attention.q.weight").sum(1) + abs(b + "attention.k.weight").sum(1) +
                         abs(b + "attention.v.weight").sum(1) + abs(b + "attention.o.weight").sum(0);
    return rows.view({-1, d}).sum(1);
  }
  return abs(b + "ffn.fc1.weight").sum(1) + abs(b + "ffn.fc2.weight").sum(0);
}

torch::Tensor KeptByImportance(const torch::Tensor& importance, double ratio) {
  torch::Tensor scores = importance.to(torch::kFloat64).contiguous();
  const int64_t units = scores.size(0);
  const int64_t removed = std::clamp<int64_t>(std::llround(ratio * static_cast<double>(units)), 0, units - 1);
  const double* score = scores.data_ptr<double>();
  std::vector<int64_t> order(units);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t c) { return score[a] > score[c]; });
  order.resize(units - removed);
  std::sort(order.begin(), order.end());
  return torch::tensor(order, torch::kInt64);
}

absl::StatusOr<TransformerWeights> PruneTransformer(const TransformerWeights& fp32, const KeptTransformerUnits& kept) {
  torch::NoGradGuard no_grad;
  TransformerWeights out = fp32;
  const auto groups = TransformerLayerGroups(fp32.config);
  for (const auto& [layer, units] : kept) {
    const TransformerLayerGroup* group = FindGroup(groups, layer);
    if (group == nullptr || (group->kind != "attention" && group->kind != "ffn")) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", layer, " cannot be pruned"));
    }
    auto storage = fp32.config.storage.find(layer);
    if (storage != fp32.config.storage.end() && storage->second.bits != kFullPrecisionBits) {
      return absl::FailedPreconditionError(absl::StrCat("pruning ", layer, " needs fp32 weights"));
    }
    const std::string b = absl::StrCat("blocks.", group->block, ".");
    auto rows = [&](const std::string& name, const torch::Tensor& index) {
      out.tensors[name] = out.tensors.at(name).index_select(0, index).contiguous();
    };
    auto cols = [&](const std::string& name, const torch::Tensor& index) {
      out.tensors[name] = out.tensors.at(name).index_select(1, index).contiguous();
    };
    if (group->kind == "attention") {
      torch::Tensor index = HeadRows(units, fp32.config.head_dim());
      for (const char* part : {"q", "k", "v"}) {
        rows(absl::StrCat(b, "attention.", part, ".weight"), index);
        rows(absl::StrCat(b, "attention.", part, ".bias"), index);
      }
      cols(b + "attention.o.weight", index);
    } else {
      rows(b + "ffn.fc1.weight", units);
      rows(b + "ffn.fc1.bias", units);
      cols(b + "ffn.fc2.weight", units);
    }
  }
  SHRINK_RETURN_IF_ERROR(ValidateTransformerWeights(out, "pruned model"));
  return out;
}

absl::StatusOr<TransformerWeights> QuantizeTransformer(const TransformerWeights& fp32,
                                                       const std::map<std::string, int>& bits) {
  torch::NoGradGuard no_grad;
  TransformerWeights out = fp32;
  const auto groups = TransformerLayerGroups(fp32.config);
  for (const auto& [layer, layer_bits] : bits) {
    if (layer_bits == kFullPrecisionBits) continue;
    const TransformerLayerGroup* group = FindGroup(groups, layer);
    if (group == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown layer ", layer));
    const bool embedding = group->kind == "embedding";
    TransformerStorage storage;
    storage.bits = layer_bits;
    if (layer_bits >= 9 && layer_bits <= 16) {
      storage.scheme = kTransformerFp16;
    } else if (layer_bits == 8) {
      storage.scheme = embedding ? kTransformerInt8Rows
                                 : (OnednnLinearAcceptsPerChannel() ? kTransformerInt8PerChannel : kTransformerInt8PerTensor);
    } else {
      return absl::UnimplementedError(absl::StrCat("layer ", layer, ": ", layer_bits, "-bit weights are not supported"));
    }
    for (const std::string& module : group->modules) {
      const torch::Tensor weight = Float32ModuleWeight(fp32, module);
      const std::string name = module + ".weight";
      if (storage.scheme == kTransformerFp16) {
        out.tensors[name] = weight.to(torch::kFloat16).contiguous();
        continue;
      }
      QuantizedWeight q = storage.scheme == kTransformerInt8PerTensor ? QuantizePerTensor(weight) : QuantizePerChannel(weight);
      out.tensors[name] = q.values;
      out.tensors[module + ".weight_scale"] = q.scales;
    }
    out.config.storage[layer] = storage;
  }
  SHRINK_RETURN_IF_ERROR(ValidateTransformerWeights(out, "quantized model"));
  return out;
}

absl::StatusOr<TransformerWeights> CompressTransformer(const TransformerWeights& fp32,
                                                       const std::vector<shrink::v1::LayerAction>& actions) {
  const auto groups = TransformerLayerGroups(fp32.config);
  KeptTransformerUnits kept;
  std::map<std::string, int> bits;
  for (const auto& action : actions) {
    const TransformerLayerGroup* group = FindGroup(groups, action.name());
    if (group == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown layer ", action.name()));
    bits[action.name()] = EffectiveBits(action.bits());
    if (action.prune() <= 0) continue;
    if (group->kind != "attention" && group->kind != "ffn") {
      return absl::InvalidArgumentError(absl::StrCat("layer ", action.name(), " cannot be pruned"));
    }
    kept[action.name()] = KeptByImportance(UnitImportance(fp32, *group), action.prune());
  }
  SHRINK_ASSIGN_OR_RETURN(TransformerWeights pruned, PruneTransformer(fp32, kept));
  SHRINK_ASSIGN_OR_RETURN(TransformerWeights compressed, QuantizeTransformer(pruned, bits));
  compressed.config.compressed = true;
  return compressed;
}

}  // namespace shrink::worker
