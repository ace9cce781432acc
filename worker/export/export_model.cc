#include "worker/export/export_model.h"

#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status.h"
#include "worker/data/fashion_mnist.h"
#include "worker/export/cnn_export.h"
#include "worker/export/transformer_export.h"
#include "worker/model/model_impl.h"
#include "worker/model/transformer_backend.h"
#include "worker/tokenizers/tokenizer.h"
#include "worker/model/cnn_backend.h"

namespace shrink::worker {
namespace {

using OrderedJson = nlohmann::ordered_json;

std::string TypeName(int type) {
  switch (type) {
    case onnx::TensorProto::FLOAT: return "float32";
    case onnx::TensorProto::INT64: return "int64";
    default: return absl::StrCat("onnx type ", type);
  }
}

OrderedJson ValueInfos(const google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>& values) {
  OrderedJson out = OrderedJson::array();
  for (const auto& v : values) {
    OrderedJson shape = OrderedJson::array();
    for (const auto& d : v.type().tensor_type().shape().dim()) {
      if (d.has_dim_param()) {
        shape.push_back(d.dim_param());
      } else {
        shape.push_back(d.dim_value());
      }
    }
    out.push_back({{"name", v.name()}, {"type", TypeName(v.type().tensor_type().elem_type())}, {"shape", shape}});
  }
  return out;
}

// The stored scheme of each policy layer, from the model's own description.
std::map<std::string, std::pair<std::string, int>> LayerSchemes(const Model::Impl& impl) {
  std::map<std::string, std::pair<std::string, int>> out;
  if (const CnnBackend* cnn = impl.cnn()) {
    for (const auto& [layer, s] : cnn->checkpoint.storage) out[layer] = {s.scheme, s.bits};
  } else if (const TransformerBackend* t = impl.transformer()) {
    for (const auto& group : TransformerLayerGroups(t->weights.config)) {
      const LayerStorage& s = ModuleStorage(t->weights.config, group.modules.front());
      out[group.name] = {s.scheme, s.bits};
    }
  }
  return out;
}

bool IsEmptyDir(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return false;
  bool empty = true;
  while (dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) empty = false;
  }
  closedir(d);
  return empty;
}

}  // namespace

std::string ServingInfoJson(const Model& model) {
  const Model::Impl& impl = *model.impl;
  OrderedJson task;
  if (const CnnBackend* cnn = impl.cnn()) {
    task["kind"] = "image_classification";
    OrderedJson labels = OrderedJson::array();
    const int64_t classes = cnn->checkpoint.widths.classes;
    const int64_t named = static_cast<int64_t>(std::size(kFashionMnistClasses));
    for (int64_t i = 0; i < classes; ++i) labels.push_back(classes == named ? kFashionMnistClasses[i] : std::to_string(i));
    task["labels"] = labels;
    task["preprocessing"] = {{"scale", 1.0 / 255.0}, {"mean", kFashionMnistMean}, {"std", kFashionMnistStd}};
  } else if (const TransformerBackend* t = impl.transformer()) {
    const TransformerConfig& c = t->weights.config;
    task["kind"] = c.is_decoder() ? "language_modelling" : "text_classification";
    if (!c.is_decoder()) {
      OrderedJson labels = OrderedJson::array();
      for (int64_t i = 0; i < c.num_labels; ++i) {
        const bool named = i < static_cast<int64_t>(c.label_names.size()) && !c.label_names[i].empty();
        labels.push_back(named ? c.label_names[i] : absl::StrCat("LABEL_", i));
      }
      task["labels"] = labels;
    }
    task["pad_token_id"] = t->PadId();
    task["max_sequence"] = c.max_sequence();
  }
  return task.dump();
}

namespace {
LowBitLinearOptions LowBit(const ExportOptions& options) {
  LowBitLinearOptions low_bit;
  low_bit.int8_kernel = options.low_bit_kernel == LowBitKernel::kInt8;
  low_bit.nbits_accuracy_level = options.nbits_accuracy_level;
  return low_bit;
}
}  // namespace

absl::StatusOr<ExportResult> WriteOnnxExport(const Model& model, const std::string& dir, const ExportOptions& options) {
  const Model::Impl& impl = *model.impl;
  absl::StatusOr<OnnxGraph> graph = absl::InternalError("no backend");
  try {
    if (const CnnBackend* cnn = impl.cnn()) {
      graph = CnnToOnnx(cnn->checkpoint, LowBit(options));
    } else if (const TransformerBackend* t = impl.transformer()) {
      TransformerExportOptions transformer_options;
      transformer_options.low_bit = LowBit(options);
      graph = TransformerToOnnx(t->weights, transformer_options);
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("exporting ", model.ModelType(), " to ONNX: ", e.what_without_backtrace()));
  }
  if (!graph.ok()) return graph.status();
  const auto scope_ops = graph->ScopeOps();
  onnx::ModelProto proto = std::move(*graph).Finish("shrink", absl::StrCat("Shrink export of a ", model.ModelType(), " model"));

  OrderedJson manifest;
  manifest["format"] = "onnx";
  manifest["file"] = kOnnxFile;
  manifest["model_type"] = model.ModelType();
  manifest["ir_version"] = proto.ir_version();
  OrderedJson opsets = OrderedJson::object();
  for (const auto& o : proto.opset_import()) opsets[o.domain().empty() ? "ai.onnx" : o.domain()] = o.version();
  manifest["opsets"] = opsets;
  manifest["runtime"] = "ONNX Runtime >= 1.30 (CPU; com.microsoft contrib ops)";
  manifest["task"] = OrderedJson::parse(ServingInfoJson(model));
  manifest["inputs"] = ValueInfos(proto.graph().input());
  manifest["outputs"] = ValueInfos(proto.graph().output());
  const auto storage = LayerSchemes(impl);
  OrderedJson layers = OrderedJson::array();
  for (const auto& [scope, ops] : scope_ops) {
    if (scope.empty()) continue;
    OrderedJson layer = {{"name", scope}};
    if (auto it = storage.find(scope); it != storage.end()) {
      layer["scheme"] = it->second.first;
      layer["bits"] = it->second.second;
    }
    OrderedJson op_counts = OrderedJson::object();
    for (const auto& [op, count] : ops) op_counts[op] = count;
    layer["ops"] = op_counts;
    layers.push_back(layer);
  }
  manifest["layers"] = layers;

  const std::string onnx_path = absl::StrCat(dir, "/", kOnnxFile);
  const int64_t initializer_bytes = [&] {
    int64_t total = 0;
    for (const auto& t : proto.graph().initializer()) total += static_cast<int64_t>(t.raw_data().size());
    return total;
  }();
  const bool external = initializer_bytes > options.external_data_threshold;
  manifest["external_data"] = external ? OrderedJson(kOnnxDataFile) : OrderedJson(nullptr);
  SHRINK_RETURN_IF_ERROR(WriteOnnxModel(std::move(proto), onnx_path, options.external_data_threshold));
  if (const TransformerBackend* t = impl.transformer(); t != nullptr && t->tokenizer) {
    SHRINK_RETURN_IF_ERROR(t->tokenizer->Save(dir));
  }
  ExportResult result;
  SHRINK_ASSIGN_OR_RETURN(result.onnx_bytes, FileSize(onnx_path));
  if (external) {
    SHRINK_ASSIGN_OR_RETURN(int64_t data_bytes, FileSize(absl::StrCat(dir, "/", kOnnxDataFile)));
    result.onnx_bytes += data_bytes;
  }
  manifest["bytes"] = result.onnx_bytes;
  result.manifest_json = manifest.dump(2) + "\n";
  SHRINK_RETURN_IF_ERROR(WriteFileAtomic(absl::StrCat(dir, "/", kExportManifestFile), result.manifest_json));
  return result;
}

absl::StatusOr<ExportResult> ExportModel(const Model& model, const std::string& out_dir, const ExportOptions& options) {
  if (PathExists(out_dir) && !IsEmptyDir(out_dir)) {
    return absl::FailedPreconditionError(absl::StrCat(out_dir, " exists and is not an empty folder; export into a new one"));
  }
  const std::string parent = out_dir.find('/') == std::string::npos ? "." : out_dir.substr(0, out_dir.rfind('/'));
  SHRINK_RETURN_IF_ERROR(MakeDirs(parent.empty() ? "/" : parent));
  SHRINK_ASSIGN_OR_RETURN(std::string staging, MakeTempDir(".shrink-export.tmp.", parent.empty() ? "/" : parent));
  absl::StatusOr<ExportResult> result = WriteOnnxExport(model, staging, options);
  if (result.ok()) {
    if (PathExists(out_dir)) ::rmdir(out_dir.c_str());
    if (::rename(staging.c_str(), out_dir.c_str()) != 0) {
      result = absl::InternalError(absl::StrCat("moving the export into ", out_dir, ": ", std::strerror(errno)));
    }
  }
  if (!result.ok()) RemoveAll(staging);
  return result;
}

}  // namespace shrink::worker
