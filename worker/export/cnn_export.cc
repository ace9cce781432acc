#include "worker/export/cnn_export.h"

#include "common/status.h"
#include "worker/nn/cnn.h"

namespace shrink::worker {

StoredWeight CnnStoredWeight(const CnnCheckpoint& checkpoint, const std::string& layer) {
  return StoredWeightOf(layer, checkpoint.storage.at(layer), checkpoint.tensors,
                        CnnWeightColumns(checkpoint.widths, layer));
}

absl::StatusOr<OnnxGraph> CnnToOnnx(const CnnCheckpoint& checkpoint, const LowBitLinearOptions& low_bit) {
  const CnnWidths& widths = checkpoint.widths;
  OnnxGraph g("shrink-cnn");
  g.AddInput(kCnnOnnxInput, onnx::TensorProto::FLOAT,
             {std::string("batch"), widths.in_channels, kCnnImageSide, kCnnImageSide});
  // conv -> ReLU -> 2x2 max-pool, twice; the conv weights are widened to fp32 constants.
  std::string x = kCnnOnnxInput;
  for (const char* layer : {"conv1", "conv2"}) {
    g.SetScope(layer);
    const StoredWeight w = CnnStoredWeight(checkpoint, layer);
    SHRINK_ASSIGN_OR_RETURN(std::string weight, ExportFloatWeight(g, w, std::string(layer) + ".weight_2d"));
    const int64_t in_channels = w.in / (kCnnKernel * kCnnKernel);
    weight = g.Node("Reshape", {weight, g.Int64s(std::string(layer) + ".shape", {w.out, in_channels, kCnnKernel, kCnnKernel})},
                    std::string(layer) + ".weight");
    const std::string bias = AddTensor(g, std::string(layer) + ".bias", w.bias);
    const int64_t pad = kCnnKernel / 2;
    x = g.Node("Conv", {x, weight, bias}, layer,
               {{"kernel_shape", std::vector<int64_t>{kCnnKernel, kCnnKernel}}, {"pads", std::vector<int64_t>{pad, pad, pad, pad}}});
    x = g.Node("Relu", {x}, std::string(layer) + ".relu");
    x = g.Node("MaxPool", {x}, std::string(layer) + ".pool",
               {{"kernel_shape", std::vector<int64_t>{2, 2}}, {"strides", std::vector<int64_t>{2, 2}}});
  }
  g.SetScope("");
  x = g.Node("Flatten", {x}, "flatten", {{"axis", int64_t{1}}});
  g.SetScope("fc1");
  SHRINK_ASSIGN_OR_RETURN(x, ExportLinear(g, x, CnnStoredWeight(checkpoint, "fc1"), "fc1", low_bit));
  x = g.Node("Relu", {x}, "fc1.relu");
  g.SetScope("fc2");
  SHRINK_ASSIGN_OR_RETURN(std::string logits, ExportLinear(g, x, CnnStoredWeight(checkpoint, "fc2"), "fc2", low_bit));
  g.SetScope("");
  g.NodeWithOutputs("Identity", {logits}, {kCnnOnnxOutput});
  g.AddOutput(kCnnOnnxOutput, onnx::TensorProto::FLOAT, {std::string("batch"), widths.classes});
  return g;
}

}  // namespace shrink::worker
