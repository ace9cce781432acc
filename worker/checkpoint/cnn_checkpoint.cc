#include "worker/checkpoint/cnn_checkpoint.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/status.h"
#include "worker/checkpoint/packed_weight.h"
#include "worker/checkpoint/int8_weight.h"
#include "worker/checkpoint/safetensors.h"
#include "worker/checkpoint/safetensors_torch.h"

namespace shrink::worker {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

bool IsConv(const std::string& layer) { return layer == "conv1" || layer == "conv2"; }

std::string ShapeText(const torch::Tensor& t) { return absl::StrCat("[", absl::StrJoin(t.sizes(), ", "), "]"); }

// The weight dtype a storage scheme implies.
torch::ScalarType WeightType(const LayerStorage& storage) {
  if (storage.scheme == kSchemeFloat16) return torch::kFloat16;
  if (storage.bits == 8) return torch::kInt8;
  return torch::kFloat32;
}

absl::Status CheckScheme(const std::string& layer, const LayerStorage& storage, const std::string& origin) {
  absl::Status s = CheckStorage(storage, IsConv(layer) ? WeightRole::kConv : WeightRole::kLinear);
  if (s.ok()) return s;
  return absl::InvalidArgumentError(absl::StrCat(origin, ": quantization of ", layer, ": ", s.message()));
}

// Checks one tensor's dtype and shape; `shape` entries of -1 match anything.
absl::Status CheckTensor(const CnnCheckpoint& checkpoint, const std::string& name, torch::ScalarType type,
                         const std::vector<int64_t>& shape, const std::string& origin) {
  auto it = checkpoint.tensors.find(name);
  if (it == checkpoint.tensors.end()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": missing tensor ", name));
  }
  const torch::Tensor& t = it->second;
  if (t.scalar_type() != type) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": tensor ", name, " is ", c10::toString(t.scalar_type()),
                                                   ", expected ", c10::toString(type)));
  }
  bool match = t.dim() == static_cast<int64_t>(shape.size());
  for (size_t i = 0; match && i < shape.size(); ++i) match = shape[i] < 0 || t.size(i) == shape[i];
  if (!match) {
    std::vector<std::string> want;
    for (int64_t d : shape) want.push_back(d < 0 ? "?" : std::to_string(d));
    return absl::InvalidArgumentError(absl::StrCat(origin, ": tensor ", name, " has shape ", ShapeText(t),
                                                   ", expected [", absl::StrJoin(want, ", "), "]"));
  }
  for (int64_t d : t.sizes()) {
    if (d == 0) return absl::InvalidArgumentError(absl::StrCat(origin, ": tensor ", name, " is empty ", ShapeText(t)));
  }
  return absl::OkStatus();
}

}  // namespace

const std::vector<std::string>& CnnLayerNames() {
  static const std::vector<std::string> names = {"conv1", "conv2", "fc1", "fc2"};
  return names;
}

bool CnnCheckpoint::IsUncompressed() const {
  if (compressed) return false;
  for (const auto& [layer, s] : storage) {
    if (s.scheme != kSchemeFloat32) return false;
  }
  return true;
}

absl::Status ValidateCheckpoint(CnnCheckpoint& checkpoint, const std::string& origin) {
  std::set<std::string> expected;
  for (const auto& layer : CnnLayerNames()) {
    LayerStorage& storage = checkpoint.storage[layer];  // absent = fp32
    SHRINK_RETURN_IF_ERROR(CheckScheme(layer, storage, origin));
    if (storage.scheme == kSchemeGroupwise) {
      for (const char* suffix : {".weight_packed", ".weight_scales", ".weight_zeros"}) expected.insert(layer + suffix);
    } else {
      expected.insert(layer + ".weight");
    }
    expected.insert(layer + ".bias");
    if (storage.bits == 8) expected.insert(layer + ".weight_scale");
  }
  for (const auto& [name, tensor] : checkpoint.tensors) {
    if (expected.count(name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(origin, ": unexpected tensor ", name,
                                                     " (not part of a shrink-cnn with this quantization)"));
    }
  }
  for (const auto& name : expected) {
    if (checkpoint.tensors.count(name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(origin, ": missing tensor ", name));
    }
  }
  // Widths follow the chain of shapes: each layer's inputs are the previous layer's outputs.
  // Packed layers give their outputs through the scales' rows; a packed conv1 takes its
  // input channels from config.json (already in widths).
  CnnWidths& w = checkpoint.widths;
  const auto& s = checkpoint.storage;
  auto packed = [&](const std::string& layer) { return s.at(layer).scheme == kSchemeGroupwise; };
  for (const auto& layer : CnnLayerNames()) {
    if (!packed(layer)) continue;
    const torch::Tensor& scales = checkpoint.tensors.at(layer + ".weight_scales");
    if (scales.dim() != 2 || scales.size(0) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(origin, ": tensor ", layer, ".weight_scales has shape ",
                                                     ShapeText(scales), ", expected [out, groups]"));
    }
  }
  auto out_of = [&](const std::string& layer) {
    return checkpoint.tensors.at(layer + (packed(layer) ? ".weight_scales" : ".weight")).size(0);
  };
  // A packed weight's three tensors against its [out, cols] shape.
  auto check_packed = [&](const std::string& layer, int64_t out, int64_t cols) -> absl::Status {
    const LayerStorage& storage = s.at(layer);
    const int64_t groups = NumGroups(cols, storage.group_size);
    SHRINK_RETURN_IF_ERROR(CheckTensor(checkpoint, layer + ".weight_packed", torch::kUInt8,
                                       {PackedCodeBytes(out * cols, storage.bits)}, origin));
    SHRINK_RETURN_IF_ERROR(CheckTensor(checkpoint, layer + ".weight_scales", torch::kFloat16, {out, groups}, origin));
    SHRINK_RETURN_IF_ERROR(CheckTensor(checkpoint, layer + ".weight_zeros", torch::kFloat16, {out, groups}, origin));
    PackedTensors t{checkpoint.tensors.at(layer + ".weight_packed"), checkpoint.tensors.at(layer + ".weight_scales"),
                    checkpoint.tensors.at(layer + ".weight_zeros")};
    auto weight = FromTensors(t, out, cols, storage.bits, storage.group_size, layer);
    if (!weight.ok()) return absl::InvalidArgumentError(absl::StrCat(origin, ": ", weight.status().message()));
    return absl::OkStatus();
  };
  for (const auto& layer : CnnLayerNames()) {
    if (packed(layer)) continue;
    const torch::Tensor& weight = checkpoint.tensors.at(layer + ".weight");
    const int64_t dims = IsConv(layer) ? 4 : 2;
    if (weight.dim() != dims) {
      return absl::InvalidArgumentError(absl::StrCat(origin, ": tensor ", layer, ".weight has shape ",
                                                     ShapeText(weight), ", expected ", dims, " dims ",
                                                     IsConv(layer) ? "[out, in, 3, 3]" : "[out, in]"));
    }
  }
  w.conv1 = out_of("conv1");
  if (!packed("conv1")) w.in_channels = checkpoint.tensors.at("conv1.weight").size(1);
  w.conv2 = out_of("conv2");
  w.fc1 = out_of("fc1");
  w.classes = out_of("fc2");
  const std::map<std::string, std::vector<int64_t>> shapes = {
      {"conv1", {w.conv1, w.in_channels, kCnnKernel, kCnnKernel}},
      {"conv2", {w.conv2, w.conv1, kCnnKernel, kCnnKernel}},
      {"fc1", {w.fc1, w.conv2 * kCnnFeaturePixels}},
      {"fc2", {w.classes, w.fc1}}};
  for (const auto& layer : CnnLayerNames()) {
    const std::vector<int64_t>& shape = shapes.at(layer);
    if (packed(layer)) {
      SHRINK_RETURN_IF_ERROR(check_packed(layer, shape[0], CnnWeightColumns(w, layer)));
    } else {
      SHRINK_RETURN_IF_ERROR(CheckTensor(checkpoint, layer + ".weight", WeightType(s.at(layer)), shape, origin));
    }
  }
  const std::map<std::string, int64_t> outputs = {{"conv1", w.conv1}, {"conv2", w.conv2}, {"fc1", w.fc1}, {"fc2", w.classes}};
  for (const auto& [layer, out] : outputs) {
    SHRINK_RETURN_IF_ERROR(CheckTensor(checkpoint, layer + ".bias", torch::kFloat32, {out}, origin));
    const LayerStorage& storage = s.at(layer);
    if (storage.bits != 8) continue;
    const int64_t scales = storage.scheme == kSchemeInt8DynamicPerTensor ? 1 : out;
    const std::string name = layer + ".weight_scale";
    SHRINK_RETURN_IF_ERROR(CheckTensor(checkpoint, name, torch::kFloat32, {scales}, origin));
    const torch::Tensor& scale = checkpoint.tensors.at(name);
    if (!scale.isfinite().all().item<bool>() || !(scale > 0).all().item<bool>()) {
      return absl::InvalidArgumentError(absl::StrCat(origin, ": tensor ", name, " has a scale that is not finite and positive"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<CnnCheckpoint> ReadCnnCheckpoint(const std::string& dir) {
  const std::string config_path = absl::StrCat(dir, "/", kModelConfigFile);
  const std::string weights_path = absl::StrCat(dir, "/", kModelWeightsFile);
  if (!PathExists(config_path)) {
    return absl::InvalidArgumentError(absl::StrCat("model directory ", dir, " has no ", kModelConfigFile));
  }
  SHRINK_ASSIGN_OR_RETURN(std::string config_text, ReadFile(config_path));
  Json config = Json::parse(config_text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(config_path, ": not a valid JSON object"));
  }
  auto type_it = config.find("model_type");
  if (type_it == config.end() || !type_it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(config_path, ": no \"model_type\" string"));
  }
  if (*type_it != kCnnModelType) {
    return absl::InvalidArgumentError(absl::StrCat(config_path, ": unsupported model_type \"",
                                                   type_it->get<std::string>(), "\" (supported: ", kCnnModelType, ")"));
  }
  CnnCheckpoint checkpoint;
  try {
    if (auto q = config.find("quantization"); q != config.end()) {
      if (!q->is_object()) return absl::InvalidArgumentError(absl::StrCat(config_path, ": \"quantization\" is not an object"));
      for (auto it = q->begin(); it != q->end(); ++it) {
        const auto& names = CnnLayerNames();
        if (std::find(names.begin(), names.end(), it.key()) == names.end()) {
          return absl::InvalidArgumentError(absl::StrCat(config_path, ": quantization names unknown layer ", it.key()));
        }
        LayerStorage storage;
        storage.bits = it.value().at("bits").get<int>();
        storage.scheme = it.value().at("scheme").get<std::string>();
        storage.group_size = it.value().value("group_size", int64_t{0});
        storage.method = it.value().value("method", std::string());
        checkpoint.storage[it.key()] = storage;
      }
    }
    checkpoint.compressed = config.value("compressed", false);
    // Packed conv1 weights do not show their input channels: config.json says (checked below).
    if (auto in = config.find("in_channels"); in != config.end() && in->is_number_integer() && in->get<int64_t>() > 0) {
      checkpoint.widths.in_channels = in->get<int64_t>();
    }
    if (auto p = config.find("shrink_policy"); p != config.end()) checkpoint.policy_json = p->dump();
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(config_path, ": ", e.what()));
  }
  if (!PathExists(weights_path)) {
    return absl::InvalidArgumentError(absl::StrCat("model directory ", dir, " has no ", kModelWeightsFile));
  }
  SHRINK_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(weights_path));
  for (const auto& [name, view] : file->tensors()) {
    auto tensor = ToTorch(view);
    if (!tensor.ok()) return absl::InvalidArgumentError(absl::StrCat(weights_path, ": tensor ", name, ": ", tensor.status().message()));
    checkpoint.tensors[name] = *tensor;
  }
  SHRINK_RETURN_IF_ERROR(ValidateCheckpoint(checkpoint, weights_path));
  // config.json's record of the shapes must agree with the tensors.
  const CnnWidths& w = checkpoint.widths;
  const std::map<std::string, std::pair<int64_t, int64_t>> in_out = {
      {"conv1", {w.in_channels, w.conv1}}, {"conv2", {w.conv1, w.conv2}},
      {"fc1", {w.conv2 * kCnnFeaturePixels, w.fc1}}, {"fc2", {w.fc1, w.classes}}};
  if (auto layers = config.find("layers"); layers != config.end()) {
    if (!layers->is_object()) return absl::InvalidArgumentError(absl::StrCat(config_path, ": \"layers\" is not an object"));
    for (auto it = layers->begin(); it != layers->end(); ++it) {
      auto found = in_out.find(it.key());
      if (found == in_out.end()) {
        return absl::InvalidArgumentError(absl::StrCat(config_path, ": layers names unknown layer ", it.key()));
      }
      for (const auto& [field, actual] : {std::pair<std::string, int64_t>{"in", found->second.first},
                                          std::pair<std::string, int64_t>{"out", found->second.second}}) {
        auto value = it.value().find(field);
        if (value == it.value().end()) continue;
        if (!value->is_number_integer() || value->get<int64_t>() != actual) {
          return absl::InvalidArgumentError(absl::StrCat(config_path, ": layers.", it.key(), ".", field, " is ",
                                                         value->dump(), " but ", it.key(), ".weight (",
                                                         kModelWeightsFile, ") implies ", actual));
        }
      }
    }
  }
  for (const auto& [field, actual] : {std::pair<std::string, int64_t>{"num_classes", w.classes},
                                      std::pair<std::string, int64_t>{"in_channels", w.in_channels}}) {
    auto value = config.find(field);
    if (value != config.end() && (!value->is_number_integer() || value->get<int64_t>() != actual)) {
      return absl::InvalidArgumentError(absl::StrCat(config_path, ": ", field, " is ", value->dump(),
                                                     " but the tensors in ", kModelWeightsFile, " imply ", actual));
    }
  }
  return checkpoint;
}

std::string CnnConfigJson(const CnnCheckpoint& checkpoint) {
  const CnnWidths& w = checkpoint.widths;
  OrderedJson config;
  config["model_type"] = kCnnModelType;
  config["architectures"] = {"ShrinkCnn"};
  config["in_channels"] = w.in_channels;
  config["image_size"] = kCnnImageSide;
  config["num_classes"] = w.classes;
  config["layers"] = {
      {"conv1", {{"kind", "conv2d"}, {"in", w.in_channels}, {"out", w.conv1}, {"kernel", kCnnKernel}}},
      {"conv2", {{"kind", "conv2d"}, {"in", w.conv1}, {"out", w.conv2}, {"kernel", kCnnKernel}}},
      {"fc1", {{"kind", "linear"}, {"in", w.conv2 * kCnnFeaturePixels}, {"out", w.fc1}}},
      {"fc2", {{"kind", "linear"}, {"in", w.fc1}, {"out", w.classes}}}};
  OrderedJson quantization = OrderedJson::object();
  for (const auto& layer : CnnLayerNames()) {
    auto it = checkpoint.storage.find(layer);
    if (it == checkpoint.storage.end() || it->second.scheme == kSchemeFloat32) continue;
    quantization[layer] = {{"bits", it->second.bits}, {"scheme", it->second.scheme}};
    if (it->second.group_size > 0) quantization[layer]["group_size"] = it->second.group_size;
    if (!it->second.method.empty()) quantization[layer]["method"] = it->second.method;
  }
  config["quantization"] = quantization;
  if (checkpoint.compressed) {
    config["compressed"] = true;
    if (!checkpoint.policy_json.empty()) {
      Json policy = Json::parse(checkpoint.policy_json, nullptr, false);
      if (!policy.is_discarded()) config["shrink_policy"] = policy;
    }
  }
  return config.dump(2) + "\n";
}

absl::StatusOr<std::string> CnnSafetensorsBytes(const CnnCheckpoint& checkpoint) {
  std::map<std::string, SafetensorsTensor> tensors;
  for (const auto& [name, tensor] : checkpoint.tensors) {
    SHRINK_ASSIGN_OR_RETURN(tensors[name], FromTorch(tensor));
  }
  return SerializeSafetensors(tensors, {{"format", "pt"}});
}

absl::Status WriteCnnCheckpoint(const CnnCheckpoint& checkpoint, const std::string& dir) {
  SHRINK_RETURN_IF_ERROR(MakeDirs(dir));
  SHRINK_ASSIGN_OR_RETURN(std::string weights, CnnSafetensorsBytes(checkpoint));
  SHRINK_RETURN_IF_ERROR(WriteFileAtomic(absl::StrCat(dir, "/", kModelWeightsFile), weights));
  return WriteFileAtomic(absl::StrCat(dir, "/", kModelConfigFile), CnnConfigJson(checkpoint));
}

int64_t CnnWeightColumns(const CnnWidths& w, const std::string& layer) {
  const int64_t kernel = kCnnKernel * kCnnKernel;
  if (layer == "conv1") return w.in_channels * kernel;
  if (layer == "conv2") return w.conv1 * kernel;
  if (layer == "fc1") return w.conv2 * kCnnFeaturePixels;
  return w.fc1;
}

torch::Tensor Float32Weight(const CnnCheckpoint& checkpoint, const std::string& layer) {
  const LayerStorage& storage = checkpoint.storage.at(layer);
  if (storage.scheme == kSchemeGroupwise) {
    PackedTensors t{checkpoint.tensors.at(layer + ".weight_packed"), checkpoint.tensors.at(layer + ".weight_scales"),
                    checkpoint.tensors.at(layer + ".weight_zeros")};
    const int64_t out = t.scales.size(0);
    auto packed = FromTensors(t, out, CnnWeightColumns(checkpoint.widths, layer), storage.bits, storage.group_size, layer);
    TORCH_CHECK(packed.ok(), std::string(packed.status().message()));
    auto weight = DequantizedTensor(*packed);
    TORCH_CHECK(weight.ok(), std::string(weight.status().message()));
    if (IsConv(layer)) return weight->view({out, -1, kCnnKernel, kCnnKernel});
    return *weight;
  }
  const torch::Tensor& weight = checkpoint.tensors.at(layer + ".weight");
  if (storage.bits == 8) return Dequantize({weight, checkpoint.tensors.at(layer + ".weight_scale")});
  return weight.to(torch::kFloat32);
}

}  // namespace shrink::worker
