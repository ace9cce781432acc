#include "worker/compress/prune/cnn_prune.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/policy.h"
#include "common/status.h"
#include "worker/compress/prune/transformer_prune.h"
#include "worker/nn/cnn_build.h"

namespace shrink::worker {
namespace {

// Each prunable layer, the layer that consumes its outputs, and how many input
// columns of that consumer one output unit feeds.
struct PruneLink {
  const char* layer;
  const char* next;
  int64_t input_group;
};
constexpr PruneLink kPruneLinks[] = {{"conv1", "conv2", 1}, {"conv2", "fc1", kCnnFeaturePixels}, {"fc1", "fc2", 1}};

}  // namespace

torch::Tensor KeptUnitsByL1(const torch::Tensor& weight, double ratio) {
  torch::NoGradGuard no_grad;
  const int64_t out = weight.size(0);
  return KeptByImportance(weight.detach().to(torch::kFloat64).abs().reshape({out, -1}).sum(1), ratio);
}

absl::StatusOr<std::map<std::string, torch::Tensor>> CnnActivationImportance(const CnnCheckpoint& checkpoint,
                                                                             const torch::Tensor& images) {
  torch::NoGradGuard no_grad;
  const CnnWidths& widths = checkpoint.widths;
  if (!images.defined() || images.dim() != 4 || images.size(0) == 0 || images.size(1) != widths.in_channels ||
      images.size(2) != kCnnImageSide || images.size(3) != kCnnImageSide) {
    return absl::InvalidArgumentError(absl::StrCat("activation importance needs calibration images [n, ",
                                                   widths.in_channels, ", ", kCnnImageSide, ", ", kCnnImageSide,
                                                   "] with n > 0"));
  }
  for (const char* layer : {"conv1", "conv2", "fc1", "fc2"}) {
    if (checkpoint.storage.at(layer).scheme != kSchemeFloat32) {
      return absl::FailedPreconditionError(absl::StrCat("activation importance needs fp32 weights; ", layer, " is ",
                                                        checkpoint.storage.at(layer).scheme));
    }
  }
  SHRINK_ASSIGN_OR_RETURN(Cnn net, BuildCnn(checkpoint));
  const torch::Tensor conv2 = checkpoint.tensors.at("conv2.weight");  // [conv2, conv1, k, k]
  // conv2 split per input channel: a grouped conv whose output g * conv2 + o is conv1 channel g's
  // contribution to conv2 channel o.
  const torch::Tensor per_channel =
      conv2.transpose(0, 1).reshape({widths.conv1 * widths.conv2, 1, kCnnKernel, kCnnKernel}).contiguous();
  const torch::Tensor fc1 = checkpoint.tensors.at("fc1.weight").view({widths.fc1, widths.conv2, kCnnFeaturePixels});
  const torch::Tensor fc2_norms = checkpoint.tensors.at("fc2.weight").to(torch::kFloat64).norm(2, {0});  // [fc1]
  torch::Tensor conv1_sum = torch::zeros({widths.conv1}, torch::kFloat64);
  torch::Tensor conv2_sum = torch::zeros({widths.conv2}, torch::kFloat64);
  torch::Tensor fc1_sum = torch::zeros({widths.fc1}, torch::kFloat64);
  const int64_t n = images.size(0);
  constexpr int64_t kBatch = 32;  // bounds the grouped conv's [batch, conv1 * conv2, 14, 14] output
  for (int64_t start = 0; start < n; start += kBatch) {
    const int64_t count = std::min(kBatch, n - start);
    std::vector<torch::Tensor> features;  // conv1 and conv2 after ReLU + pool, fc1 after ReLU
    net->forward(images.narrow(0, start, count).to(torch::kFloat32), &features);
    const torch::Tensor& a1 = features[0];
    const int64_t side = a1.size(2);
    torch::Tensor parts = torch::nn::functional::conv2d(
        a1, per_channel, torch::nn::functional::Conv2dFuncOptions().padding(kCnnKernel / 2).groups(widths.conv1));
    conv1_sum += parts.view({count, widths.conv1, widths.conv2, side, side})
                     .norm(2, {2})
                     .to(torch::kFloat64)
                     .sum({0, 2, 3}) /
                 static_cast<double>(side * side);
    torch::Tensor a2 = features[1].reshape({count, widths.conv2, kCnnFeaturePixels});
    conv2_sum += torch::einsum("ncp,ocp->nco", {a2, fc1}).norm(2, {2}).to(torch::kFloat64).sum(0);
    fc1_sum += features[2].abs().to(torch::kFloat64).sum(0) * fc2_norms;
  }
  const double examples = static_cast<double>(n);
  return std::map<std::string, torch::Tensor>{
      {"conv1", conv1_sum / examples}, {"conv2", conv2_sum / examples}, {"fc1", fc1_sum / examples}};
}

KeptUnits ChooseKeptUnits(const CnnCheckpoint& fp32, const std::vector<shrink::v1::LayerAction>& actions,
                          const std::map<std::string, torch::Tensor>& importance) {
  KeptUnits kept;
  for (const auto& action : actions) {
    if (action.prune() <= 0) continue;
    auto scores = importance.find(action.name());
    kept[action.name()] = scores != importance.end()
                              ? KeptByImportance(scores->second, action.prune())
                              : KeptUnitsByL1(fp32.tensors.at(action.name() + ".weight"), action.prune());
  }
  return kept;
}

absl::StatusOr<CnnCheckpoint> PruneCnn(const CnnCheckpoint& fp32, const KeptUnits& kept) {
  torch::NoGradGuard no_grad;
  CnnCheckpoint out = fp32;
  for (const auto& [layer, units] : kept) {
    const PruneLink* link = nullptr;
    for (const auto& candidate : kPruneLinks) {
      if (layer == candidate.layer) link = &candidate;
    }
    if (link == nullptr) return absl::InvalidArgumentError(absl::StrCat("layer ", layer, " cannot be pruned"));
    if (out.storage.at(layer).scheme != kSchemeFloat32 || out.storage.at(link->next).scheme != kSchemeFloat32) {
      return absl::FailedPreconditionError(absl::StrCat("pruning ", layer, " needs fp32 weights"));
    }
    const std::string weight = absl::StrCat(layer, ".weight"), bias = absl::StrCat(layer, ".bias");
    out.tensors[weight] = out.tensors.at(weight).index_select(0, units).contiguous();
    out.tensors[bias] = out.tensors.at(bias).index_select(0, units).contiguous();
    // Each kept unit feeds `input_group` consecutive input columns of the next layer.
    torch::Tensor columns =
        (units.unsqueeze(1) * link->input_group + torch::arange(link->input_group, torch::kInt64)).flatten();
    const std::string next_weight = absl::StrCat(link->next, ".weight");
    out.tensors[next_weight] = out.tensors.at(next_weight).index_select(1, columns).contiguous();
  }
  SHRINK_RETURN_IF_ERROR(ValidateCheckpoint(out, "pruned model"));
  return out;
}

}  // namespace shrink::worker
