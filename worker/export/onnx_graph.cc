#include "worker/export/onnx_graph.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace shrink::worker {
namespace {

constexpr int64_t kExternalMinBytes = 1024;

void SetDims(onnx::ValueInfoProto* info, int type, const std::vector<OnnxDim>& dims) {
  auto* tensor = info->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(type);
  auto* shape = tensor->mutable_shape();
  for (const OnnxDim& d : dims) {
    auto* dim = shape->add_dim();
    if (std::holds_alternative<int64_t>(d)) {
      dim->set_dim_value(std::get<int64_t>(d));
    } else {
      dim->set_dim_param(std::get<std::string>(d));
    }
  }
}

void SetAttribute(onnx::AttributeProto* a, const OnnxAttribute& attribute) {
  a->set_name(attribute.name);
  if (const auto* i = std::get_if<int64_t>(&attribute.value)) {
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(*i);
  } else if (const auto* f = std::get_if<float>(&attribute.value)) {
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(*f);
  } else if (const auto* s = std::get_if<std::string>(&attribute.value)) {
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(*s);
  } else {
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t v : std::get<std::vector<int64_t>>(attribute.value)) a->add_ints(v);
  }
}

}  // namespace

OnnxGraph::OnnxGraph(const std::string& name) { graph_.set_name(name); }

std::string OnnxGraph::Unique(const std::string& name) {
  std::string candidate = name;
  for (int i = 1; std::find(used_.begin(), used_.end(), candidate) != used_.end(); ++i) {
    candidate = absl::StrCat(name, "_", i);
  }
  used_.push_back(candidate);
  return candidate;
}

void OnnxGraph::CountOp(const std::string& op, const std::string& domain) {
  const std::string key = domain.empty() ? op : absl::StrCat(domain, ".", op);
  auto scope = std::find_if(scope_ops_.begin(), scope_ops_.end(), [&](const auto& s) { return s.first == scope_; });
  if (scope == scope_ops_.end()) scope = scope_ops_.insert(scope_ops_.end(), {scope_, {}});
  for (auto& [name, count] : scope->second) {
    if (name == key) {
      ++count;
      return;
    }
  }
  scope->second.emplace_back(key, 1);
}

void OnnxGraph::AddInput(const std::string& name, int type, const std::vector<OnnxDim>& dims) {
  used_.push_back(name);
  SetDims(graph_.add_input(), type, dims);
  graph_.mutable_input()->rbegin()->set_name(name);
}

void OnnxGraph::AddOutput(const std::string& name, int type, const std::vector<OnnxDim>& dims) {
  SetDims(graph_.add_output(), type, dims);
  graph_.mutable_output()->rbegin()->set_name(name);
}

std::string OnnxGraph::AddInitializer(const std::string& name, int type, const std::vector<int64_t>& dims,
                                      const void* data, size_t bytes) {
  onnx::TensorProto* t = graph_.add_initializer();
  t->set_name(Unique(name));
  t->set_data_type(type);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(data, bytes);
  initializer_bytes_ += static_cast<int64_t>(bytes);
  return t->name();
}

std::string OnnxGraph::Int64s(const std::string& name, const std::vector<int64_t>& values, bool scalar) {
  std::vector<int64_t> dims;
  if (!scalar) dims.push_back(static_cast<int64_t>(values.size()));
  return AddInitializer(name, onnx::TensorProto::INT64, dims, values.data(), values.size() * sizeof(int64_t));
}

std::string OnnxGraph::Floats(const std::string& name, const std::vector<float>& values, bool scalar) {
  std::vector<int64_t> dims;
  if (!scalar) dims.push_back(static_cast<int64_t>(values.size()));
  return AddInitializer(name, onnx::TensorProto::FLOAT, dims, values.data(), values.size() * sizeof(float));
}

std::string OnnxGraph::Node(const std::string& op, const std::vector<std::string>& inputs, const std::string& name,
                            const std::vector<OnnxAttribute>& attributes, const std::string& domain) {
  const std::string output = Unique(name);
  NodeWithOutputs(op, inputs, {output}, attributes, domain);
  return output;
}

void OnnxGraph::NodeWithOutputs(const std::string& op, const std::vector<std::string>& inputs,
                                const std::vector<std::string>& outputs, const std::vector<OnnxAttribute>& attributes,
                                const std::string& domain) {
  onnx::NodeProto* node = graph_.add_node();
  node->set_op_type(op);
  node->set_name(outputs.empty() ? op : outputs.front());
  if (!domain.empty()) {
    node->set_domain(domain);
    uses_microsoft_ = uses_microsoft_ || domain == kMicrosoftDomain;
  }
  for (const auto& input : inputs) node->add_input(input);
  for (const auto& output : outputs) {
    node->add_output(output);
    if (!output.empty() && std::find(used_.begin(), used_.end(), output) == used_.end()) used_.push_back(output);
  }
  for (const auto& attribute : attributes) SetAttribute(node->add_attribute(), attribute);
  CountOp(op, domain);
}

onnx::ModelProto OnnxGraph::Finish(const std::string& producer, const std::string& doc) && {
  onnx::ModelProto model;
  model.set_ir_version(kOnnxIrVersion);
  model.set_producer_name(producer);
  model.set_producer_version(SHRINK_VERSION);
  model.set_doc_string(doc);
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  if (uses_microsoft_) {
    auto* ms = model.add_opset_import();
    ms->set_domain(kMicrosoftDomain);
    ms->set_version(kMicrosoftOpset);
  }
  *model.mutable_graph() = std::move(graph_);
  return model;
}

absl::Status WriteOnnxModel(onnx::ModelProto model, const std::string& path, int64_t external_threshold) {
  int64_t total = 0;
  for (const auto& t : model.graph().initializer()) total += static_cast<int64_t>(t.raw_data().size());
  const std::string data_path = path + ".data";
  if (total > external_threshold) {
    // ONNX external data: the bytes at `offset` of `location` (relative to the model's folder).
    const std::string location = data_path.substr(data_path.rfind('/') + 1);
    std::string data;
    for (auto& t : *model.mutable_graph()->mutable_initializer()) {
      if (static_cast<int64_t>(t.raw_data().size()) < kExternalMinBytes) continue;
      const size_t offset = data.size();
      data += t.raw_data();
      t.clear_raw_data();
      t.set_data_location(onnx::TensorProto::EXTERNAL);
      auto add = [&](const std::string& key, const std::string& value) {
        auto* entry = t.add_external_data();
        entry->set_key(key);
        entry->set_value(value);
      };
      add("location", location);
      add("offset", std::to_string(offset));
      add("length", std::to_string(data.size() - offset));
    }
    if (auto status = WriteFileAtomic(data_path, data); !status.ok()) return status;
  } else {
    RemoveAll(data_path);  // a stale one from an earlier export would mislead
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes)) {
    return absl::InternalError(absl::StrCat(path, ": the ONNX model could not be serialized"));
  }
  return WriteFileAtomic(path, bytes);
}

}  // namespace shrink::worker
