#include "worker/compress/quantize/cnn_quantize.h"

#include "absl/strings/str_cat.h"
#include "common/policy.h"
#include "common/status.h"
#include "worker/checkpoint/int8_weight.h"
#include "worker/checkpoint/packed_weight.h"
#include "worker/compress/quantize/groupwise_quantize.h"
#include "worker/nn/cnn_build.h"
#include "worker/nn/int8_linear.h"

namespace shrink::worker {

std::map<std::string, torch::Tensor> RecordCnnInputs(const CnnCheckpoint& checkpoint, const torch::Tensor& images,
                                                     int64_t max_rows) {
  torch::NoGradGuard no_grad;
  std::map<std::string, torch::Tensor> inputs;
  auto built = BuildCnn(checkpoint);
  if (!built.ok() || !images.defined() || images.size(0) == 0) return inputs;
  Cnn m = *built;
  // Conv inputs as the patches each output pixel multiplies: [N * pixels, in * k * k].
  auto patches = [&](const torch::Tensor& x) {
    torch::Tensor cols = torch::nn::functional::unfold(
        x, torch::nn::functional::UnfoldFuncOptions({kCnnKernel, kCnnKernel}).padding(kCnnKernel / 2));
    return SubsampleRows(cols.transpose(1, 2).reshape({-1, cols.size(1)}), max_rows);
  };
  torch::Tensor x = images.to(torch::kFloat32);
  inputs["conv1"] = patches(x);
  x = torch::max_pool2d(torch::relu(m->conv1(x)), 2);
  inputs["conv2"] = patches(x);
  x = torch::max_pool2d(torch::relu(m->conv2(x)), 2).flatten(1);
  inputs["fc1"] = SubsampleRows(x, max_rows);
  if (!m->fc1) return inputs;
  x = torch::relu(m->fc1(x));
  inputs["fc2"] = SubsampleRows(x, max_rows);
  return inputs;
}

absl::StatusOr<CnnCheckpoint> QuantizeCnn(const CnnCheckpoint& fp32, const std::map<std::string, int>& bits,
                                          const std::map<std::string, torch::Tensor>& inputs) {
  torch::NoGradGuard no_grad;
  CnnCheckpoint out = fp32;
  for (const auto& [layer, layer_bits] : bits) {
    if (layer_bits == kFullPrecisionBits) continue;
    const bool conv = layer.rfind("conv", 0) == 0;
    const std::string weight_name = absl::StrCat(layer, ".weight");
    const torch::Tensor weight = Float32Weight(fp32, layer);
    LayerStorage& storage = out.storage[layer];
    storage.bits = layer_bits;
    if (layer_bits >= kMinBits && layer_bits <= 7) {
      auto x = inputs.find(layer);
      const bool calibrated = x != inputs.end() && x->second.defined() && x->second.size(0) > 0;
      auto packed = QuantizeTensorGroupwise(weight, layer_bits, kQuantGroupSize, calibrated ? x->second : torch::Tensor());
      if (!packed.ok()) return absl::InvalidArgumentError(absl::StrCat("layer ", layer, ": ", packed.status().message()));
      PackedTensors t = ToTensors(*packed);
      storage.scheme = kSchemeGroupwise;
      storage.group_size = kQuantGroupSize;
      storage.method = calibrated ? "gptq" : "rtn";
      out.tensors.erase(weight_name);
      out.tensors[layer + ".weight_packed"] = t.packed;
      out.tensors[layer + ".weight_scales"] = t.scales;
      out.tensors[layer + ".weight_zeros"] = t.zeros;
    } else if (layer_bits >= 9 && layer_bits <= 16) {
      storage.scheme = kSchemeFloat16;
      out.tensors[weight_name] = weight.to(torch::kFloat16).contiguous();
    } else if (layer_bits == 8) {
      QuantizedWeight q;
      if (conv) {
        // Conv weights are stored in int8 but widened to fp32 at load: LibTorch's quantized
        // convs need quantized activations end to end, which this model does not use.
        storage.scheme = kSchemeInt8WeightPerChannel;
        q = QuantizePerChannel(weight);
      } else if (OnednnLinearAcceptsPerChannel()) {
        storage.scheme = kSchemeInt8DynamicPerChannel;
        q = QuantizePerChannel(weight);
      } else {
        storage.scheme = kSchemeInt8DynamicPerTensor;
        q = QuantizePerTensor(weight);
      }
      out.tensors[weight_name] = q.values;
      out.tensors[absl::StrCat(layer, ".weight_scale")] = q.scales;
    } else {
      return absl::UnimplementedError(absl::StrCat("layer ", layer, ": ", layer_bits, "-bit weights are not supported"));
    }
  }
  SHRINK_RETURN_IF_ERROR(ValidateCheckpoint(out, "quantized model"));
  return out;
}

}  // namespace shrink::worker
