#include "worker/nn/transformer_build.h"

#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "worker/checkpoint/int8_weight.h"
#include "worker/checkpoint/packed_weight.h"
#include "worker/nn/int8_linear.h"

namespace shrink::worker {
namespace {

std::string ShapeText(const torch::Tensor& t) { return absl::StrCat("[", absl::StrJoin(t.sizes(), ", "), "]"); }

}  // namespace

TransformerWeights WeightsFromModule(Transformer& net) {
  torch::NoGradGuard no_grad;
  TransformerWeights weights;
  weights.config = net->config();
  for (const auto& item : net->named_parameters()) {
    weights.tensors[item.key()] = item.value().detach().to(torch::kCPU).clone().contiguous();
  }
  return weights;
}

absl::StatusOr<Transformer> BuildTransformer(const TransformerWeights& weights, torch::Device device) {
  torch::NoGradGuard no_grad;
  const TransformerConfig& c = weights.config;
  Transformer net(c);
  net->eval();
  std::map<std::string, std::string> module_layer;
  for (const auto& group : TransformerLayerGroups(c)) {
    for (const auto& module : group.modules) module_layer[module] = group.name;
  }
  // Quantized dense layers get their int8 kernels; everything else is copied in fp32.
  std::map<std::string, Dense> dense;
  for (const auto& item : net->named_modules()) {
    if (item.value()->as<DenseImpl>()) dense.emplace(item.key(), Dense(std::dynamic_pointer_cast<DenseImpl>(item.value())));
  }
  for (auto& [module, d] : dense) {
    const LayerStorage& s = LayerStorageOf(c, module_layer[module]);
    if (s.scheme == kSchemeGroupwise) {
      // The packed weight, dequantized, computes on the int8 kernel: requantized per channel, or per
      // tensor where this LibTorch's ONEDNN linear takes no per-channel scales (Debian's).
      SHRINK_ASSIGN_OR_RETURN(torch::Tensor fp32, ModuleWeightFp32(weights, module));
      if (!device.is_cpu()) {
        // GPUs: the dequantized weight itself, in fp16 (no int8 requantization there).
        SHRINK_ASSIGN_OR_RETURN(auto kernel, Int8Linear::CreateOnDevice(fp32, weights.tensors.at(module + ".bias"), device));
        d->UseInt8(kernel);
        continue;
      }
      QuantizedWeight q = OnednnLinearAcceptsPerChannel() ? QuantizePerChannel(fp32) : QuantizePerTensor(fp32);
      SHRINK_ASSIGN_OR_RETURN(auto kernel, Int8Linear::Create(q, weights.tensors.at(module + ".bias")));
      d->UseInt8(kernel);
      continue;
    }
    if (s.bits != 8) continue;
    QuantizedWeight q{weights.tensors.at(module + ".weight"), weights.tensors.at(module + ".weight_scale")};
    SHRINK_ASSIGN_OR_RETURN(auto kernel, Int8Linear::Create(q, weights.tensors.at(module + ".bias"), device));
    d->UseInt8(kernel);
  }
  auto params = net->named_parameters();
  for (auto& item : params) {
    const std::string& name = item.key();
    const bool is_weight = absl::EndsWith(name, ".weight");
    const std::string module = is_weight ? name.substr(0, name.size() - 7) : "";
    torch::Tensor value;
    if (is_weight && weights.tensors.count(module + ".weight_packed") > 0) {
      SHRINK_ASSIGN_OR_RETURN(value, ModuleWeightFp32(weights, module));
    } else {
      auto it = weights.tensors.find(name);
      if (it == weights.tensors.end()) return absl::InternalError(absl::StrCat("no stored tensor for parameter ", name));
      value = is_weight && it->second.scalar_type() == torch::kInt8 ? Float32ModuleWeight(weights, module)
                                                                     : it->second.to(torch::kFloat32);
    }
    if (value.sizes() != item.value().sizes()) {
      return absl::InternalError(absl::StrCat("parameter ", name, " is ", ShapeText(item.value()), ", stored ", ShapeText(value)));
    }
    item.value().copy_(value);
  }
  // GPT-2 with int8 embeddings: the tied LM head runs the int8 kernel on the same rows.
  if (c.is_decoder() && LayerStorageOf(c, "embeddings").bits == 8 && (!device.is_cpu() || OnednnLinearAcceptsPerChannel())) {
    QuantizedWeight q{weights.tensors.at("word.weight"), weights.tensors.at("word.weight_scale")};
    SHRINK_ASSIGN_OR_RETURN(net->lm_head_int8, Int8Linear::Create(q, torch::zeros({c.vocab_size}), device));
  }
  // GPT-2 with 4..7-bit embeddings: the tied head uses the same dequantized table, requantized
  // per row to int8 for the kernel (lookups use the dequantized rows themselves).
  if (c.is_decoder() && LayerStorageOf(c, "embeddings").scheme == kSchemeGroupwise) {
    if (!device.is_cpu()) {
      SHRINK_ASSIGN_OR_RETURN(net->lm_head_int8, Int8Linear::CreateOnDevice(net->word->weight.detach(),
                                                                            torch::zeros({c.vocab_size}), device));
    } else if (OnednnLinearAcceptsPerChannel()) {
      SHRINK_ASSIGN_OR_RETURN(net->lm_head_int8, Int8Linear::Create(QuantizePerChannel(net->word->weight.detach()),
                                                                    torch::zeros({c.vocab_size})));
    }
  }
  if (!device.is_cpu()) net->to(device);
  return net;
}

}  // namespace shrink::worker
