#include "worker/compress/quantize/transformer_quantize.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/policy.h"
#include "common/status.h"
#include "worker/checkpoint/int8_weight.h"
#include "worker/checkpoint/packed_weight.h"
#include "worker/compress/quantize/groupwise_quantize.h"
#include "worker/nn/transformer_build.h"

namespace shrink::worker {

absl::StatusOr<DenseInputs> RecordDenseInputs(const TransformerWeights& weights,
                                              const std::vector<CalibrationBatch>& batches,
                                              const std::vector<std::string>& modules, int64_t max_rows,
                                              torch::Device device) {
  torch::NoGradGuard no_grad;
  SHRINK_ASSIGN_OR_RETURN(Transformer net, BuildTransformer(weights, device));
  std::map<std::string, std::vector<torch::Tensor>> seen;
  torch::Tensor current_mask;  // the batch being run: selects rows of real tokens
  std::vector<Dense> observed;
  for (const auto& item : net->named_modules()) {
    auto dense = std::dynamic_pointer_cast<DenseImpl>(item.value());
    if (!dense || std::find(modules.begin(), modules.end(), item.key()) == modules.end()) continue;
    const std::string name = item.key();
    dense->observer = [&seen, &current_mask, name](const torch::Tensor& x) {
      torch::Tensor rows = x.reshape({-1, x.size(-1)});
      if (x.dim() == 3 && current_mask.defined() && current_mask.numel() == rows.size(0)) {
        rows = rows.index_select(0, current_mask.reshape({-1}).nonzero().reshape({-1}));
      }
      seen[name].push_back(rows.detach().to(torch::kCPU, torch::kFloat32));
    };
    observed.emplace_back(dense);
  }
  for (const CalibrationBatch& batch : batches) {
    current_mask = batch.mask.to(device);
    net->forward(batch.ids.to(device), current_mask);
  }
  for (auto& dense : observed) dense->observer = nullptr;
  DenseInputs inputs;
  for (auto& [name, parts] : seen) {
    if (!parts.empty()) inputs[name] = SubsampleRows(torch::cat(parts, 0), max_rows);
  }
  return inputs;
}

absl::StatusOr<TransformerWeights> QuantizeTransformer(const TransformerWeights& fp32,
                                                       const std::map<std::string, int>& bits,
                                                       const DenseInputs& inputs, const RecallFlag* recalled) {
  torch::NoGradGuard no_grad;
  TransformerWeights out = fp32;
  const auto groups = TransformerLayerGroups(fp32.config);
  for (const auto& [layer, layer_bits] : bits) {
    SHRINK_RETURN_IF_ERROR(CheckNotRecalled(recalled));  // GPTQ of a large layer takes seconds
    if (layer_bits == kFullPrecisionBits) continue;
    const TransformerLayerGroup* group = FindLayerGroup(groups, layer);
    if (group == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown layer ", layer));
    const bool embedding = group->kind == "embedding";
    LayerStorage storage;
    storage.bits = layer_bits;
    if (layer_bits >= kMinBits && layer_bits <= 7) {
      storage.scheme = kSchemeGroupwise;
      storage.group_size = kQuantGroupSize;
      bool calibrated = !embedding;
      for (const std::string& module : group->modules) {
        auto x = inputs.find(module);
        const bool has_inputs = !embedding && x != inputs.end() && x->second.size(0) > 0;
        calibrated = calibrated && has_inputs;
        auto packed = QuantizeTensorGroupwise(Float32ModuleWeight(fp32, module), layer_bits, kQuantGroupSize,
                                              has_inputs ? x->second : torch::Tensor());
        if (!packed.ok()) return absl::InvalidArgumentError(absl::StrCat("layer ", layer, ", ", module, ": ", packed.status().message()));
        PackedTensors t = ToTensors(*packed);
        out.tensors.erase(module + ".weight");
        out.tensors.erase(module + ".weight_scale");
        out.tensors[module + ".weight_packed"] = t.packed;
        out.tensors[module + ".weight_scales"] = t.scales;
        out.tensors[module + ".weight_zeros"] = t.zeros;
      }
      storage.method = calibrated ? "gptq" : "rtn";
      out.config.storage[layer] = storage;
      continue;
    }
    if (layer_bits >= 9 && layer_bits <= 16) {
      storage.scheme = kSchemeFloat16;
    } else if (layer_bits == 8) {
      storage.scheme = embedding ? kSchemeInt8WeightPerRow
                                 : (OnednnLinearAcceptsPerChannel() ? kSchemeInt8DynamicPerChannel : kSchemeInt8DynamicPerTensor);
    } else {
      return absl::UnimplementedError(absl::StrCat("layer ", layer, ": ", layer_bits, "-bit weights are not supported"));
    }
    for (const std::string& module : group->modules) {
      const torch::Tensor weight = Float32ModuleWeight(fp32, module);
      const std::string name = module + ".weight";
      if (storage.scheme == kSchemeFloat16) {
        out.tensors[name] = weight.to(torch::kFloat16).contiguous();
        continue;
      }
      QuantizedWeight q = storage.scheme == kSchemeInt8DynamicPerTensor ? QuantizePerTensor(weight) : QuantizePerChannel(weight);
      out.tensors[name] = q.values;
      out.tensors[module + ".weight_scale"] = q.scales;
    }
    out.config.storage[layer] = storage;
  }
  SHRINK_RETURN_IF_ERROR(ValidateTransformerWeights(out, "quantized model"));
  return out;
}

}  // namespace shrink::worker
