#include "worker/nn/cnn_build.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/checkpoint/int8_weight.h"
#include "worker/nn/int8_linear.h"

namespace shrink::worker {

CnnCheckpoint CheckpointFromModule(Cnn& net) {
  torch::NoGradGuard no_grad;
  CnnCheckpoint checkpoint;
  checkpoint.widths = net->widths();
  auto put = [&](const std::string& layer, const torch::Tensor& weight, const torch::Tensor& bias) {
    checkpoint.tensors[layer + ".weight"] = weight.detach().clone().contiguous();
    checkpoint.tensors[layer + ".bias"] = bias.detach().clone().contiguous();
    checkpoint.storage[layer] = LayerStorage();
  };
  put("conv1", net->conv1->weight, net->conv1->bias);
  put("conv2", net->conv2->weight, net->conv2->bias);
  put("fc1", net->fc1->weight, net->fc1->bias);
  put("fc2", net->fc2->weight, net->fc2->bias);
  return checkpoint;
}

absl::StatusOr<Cnn> BuildCnn(const CnnCheckpoint& checkpoint, torch::Device device) {
  try {
    torch::NoGradGuard no_grad;
    Cnn net(checkpoint.widths);
    // Convs always compute in fp32: int8 / fp16 conv weights are widened here, once.
    net->conv1->weight.copy_(Float32Weight(checkpoint, "conv1"));
    net->conv1->bias.copy_(checkpoint.tensors.at("conv1.bias"));
    net->conv2->weight.copy_(Float32Weight(checkpoint, "conv2"));
    net->conv2->bias.copy_(checkpoint.tensors.at("conv2.bias"));
    for (const std::string layer : {"fc1", "fc2"}) {
      torch::nn::Linear& linear = layer == "fc1" ? net->fc1 : net->fc2;
      const torch::Tensor& bias = checkpoint.tensors.at(layer + ".bias");
      const LayerStorage& storage = checkpoint.storage.at(layer);
      if (storage.bits == 8) {
        QuantizedWeight weight{checkpoint.tensors.at(layer + ".weight"), checkpoint.tensors.at(layer + ".weight_scale")};
        SHRINK_ASSIGN_OR_RETURN(auto kernel, Int8Linear::Create(weight, bias, device));
        net->UseInt8(layer, std::move(kernel));
      } else if (storage.scheme == kSchemeGroupwise && !device.is_cpu()) {
        // GPUs: the dequantized packed weight itself, in fp16.
        SHRINK_ASSIGN_OR_RETURN(auto kernel, Int8Linear::CreateOnDevice(Float32Weight(checkpoint, layer), bias, device));
        net->UseInt8(layer, std::move(kernel));
      } else if (storage.scheme == kSchemeGroupwise) {
        // The dequantized packed weight runs on the int8 kernel, requantized per channel (per tensor
        // where ONEDNN takes no per-channel scales).
        torch::Tensor fp32 = Float32Weight(checkpoint, layer);
        QuantizedWeight q = OnednnLinearAcceptsPerChannel() ? QuantizePerChannel(fp32) : QuantizePerTensor(fp32);
        SHRINK_ASSIGN_OR_RETURN(auto kernel, Int8Linear::Create(q, bias));
        net->UseInt8(layer, std::move(kernel));
      } else {
        linear->weight.copy_(Float32Weight(checkpoint, layer));
        linear->bias.copy_(bias);
      }
    }
    net->eval();
    if (!device.is_cpu()) net->to(device);
    return net;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("building the CNN failed: ", e.what()));
  }
}

}  // namespace shrink::worker
