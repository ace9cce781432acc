#include "worker/compress/prune/transformer_prune.h"

#include <algorithm>
#include <numeric>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/policy.h"
#include "common/status.h"

namespace shrink::worker {
namespace {

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

torch::Tensor ActivationImportance(const TransformerWeights& w, const TransformerLayerGroup& group,
                                   const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  const std::string b = absl::StrCat("blocks.", group.block, ".");
  torch::Tensor inputs = x.to(torch::kFloat64);
  if (group.kind == "attention") {
    const int64_t d = w.config.head_dim();
    torch::Tensor o = Float32ModuleWeight(w, b + "attention.o").to(torch::kFloat64);  // [hidden, heads * d]
    const int64_t heads = o.size(1) / d;
    std::vector<double> scores;
    for (int64_t h = 0; h < heads; ++h) {
      torch::Tensor part = inputs.narrow(1, h * d, d).matmul(o.narrow(1, h * d, d).t());  // [n, hidden]
      scores.push_back(part.norm(2, {1}).mean().item<double>());
    }
    return torch::tensor(scores, torch::kFloat64);
  }
  torch::Tensor fc2 = Float32ModuleWeight(w, b + "ffn.fc2").to(torch::kFloat64);  // [hidden, inter]
  return inputs.abs().mean(0) * fc2.norm(2, {0});
}

absl::StatusOr<TransformerWeights> RemoveBlocks(const TransformerWeights& w, const std::vector<int>& blocks) {
  const int64_t n = w.config.num_layers;
  std::vector<int64_t> new_index(n, -1);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (std::find(blocks.begin(), blocks.end(), i) == blocks.end()) new_index[i] = kept++;
  }
  if (kept == 0) return absl::InvalidArgumentError("removing every transformer block leaves no model; keep at least one");
  for (int b : blocks) {
    if (b < 0 || b >= n) return absl::InvalidArgumentError(absl::StrCat("no block ", b, " to remove (", n, " blocks)"));
  }
  TransformerWeights out;
  out.config = w.config;
  out.config.num_layers = kept;
  out.config.layers.clear();
  for (int64_t i = 0; i < n; ++i) {
    if (new_index[i] >= 0 && i < static_cast<int64_t>(w.config.layers.size())) out.config.layers.push_back(w.config.layers[i]);
  }
  for (const auto& [name, tensor] : w.tensors) {
    if (name.rfind("blocks.", 0) != 0) {
      out.tensors[name] = tensor;
      continue;
    }
    const size_t dot = name.find('.', 7);
    const int64_t index = std::stoll(name.substr(7, dot - 7));
    if (new_index[index] < 0) continue;
    out.tensors[absl::StrCat("blocks.", new_index[index], name.substr(dot))] = tensor;
  }
  const std::string prefix = BlockPrefix(w.config);
  out.config.storage.clear();
  for (const auto& [layer, storage] : w.config.storage) {
    std::string name = layer;
    if (layer.rfind(prefix, 0) == 0) {
      const size_t dot = layer.find('.', prefix.size());
      const int64_t index = std::stoll(layer.substr(prefix.size(), dot - prefix.size()));
      if (new_index[index] < 0) continue;
      name = absl::StrCat(prefix, new_index[index], layer.substr(dot));
    }
    out.config.storage[name] = storage;
  }
  SHRINK_RETURN_IF_ERROR(ValidateTransformerWeights(out, "model with blocks removed"));
  return out;
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
    const TransformerLayerGroup* group = FindLayerGroup(groups, layer);
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

}  // namespace shrink::worker
