// Building an ONNX model in C++ (torch-free): nodes, initializers, inputs and
// outputs by name, written as model.onnx with ONNX's own protobuf schema
// (Debian's onnx.proto). Names are data: every value is a string, and the
// builder makes them unique. Not thread-safe; one graph per exporter.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "onnx/onnx.pb.h"

namespace shrink::worker {

// The IR and opsets every exported model declares: ONNX Runtime 1.30 accepts IR 3–13 and
// opsets 7–25; Debian's onnx.proto is IR 8 (opset 17, which has LayerNormalization).
inline constexpr int64_t kOnnxIrVersion = 8;
inline constexpr int64_t kOnnxOpset = 17;
inline constexpr int64_t kMicrosoftOpset = 1;
inline constexpr char kMicrosoftDomain[] = "com.microsoft";

// One attribute value: int, float, string or a list of ints.
using OnnxAttributeValue = std::variant<int64_t, float, std::string, std::vector<int64_t>>;
struct OnnxAttribute {
  std::string name;
  OnnxAttributeValue value;
};

// A graph input's or output's dimension: a fixed size or a symbolic name ("batch").
using OnnxDim = std::variant<int64_t, std::string>;

class OnnxGraph {
 public:
  explicit OnnxGraph(const std::string& name);

  // Declares a graph input / output of element `type` (onnx::TensorProto::FLOAT, INT64, ...).
  void AddInput(const std::string& name, int type, const std::vector<OnnxDim>& dims);
  void AddOutput(const std::string& name, int type, const std::vector<OnnxDim>& dims);

  // Adds an initializer from raw little-endian bytes; returns its (unique) name.
  std::string AddInitializer(const std::string& name, int type, const std::vector<int64_t>& dims,
                             const void* data, size_t bytes);
  // Small constant initializers.
  std::string Int64s(const std::string& name, const std::vector<int64_t>& values, bool scalar = false);
  std::string Floats(const std::string& name, const std::vector<float>& values, bool scalar = false);

  // Adds a node with one output, named after `name`; returns the output's name.
  std::string Node(const std::string& op, const std::vector<std::string>& inputs, const std::string& name,
                   const std::vector<OnnxAttribute>& attributes = {}, const std::string& domain = "");
  // Adds a node whose outputs are named exactly `outputs` ("" skips an optional output).
  void NodeWithOutputs(const std::string& op, const std::vector<std::string>& inputs,
                       const std::vector<std::string>& outputs, const std::vector<OnnxAttribute>& attributes = {},
                       const std::string& domain = "");

  // Nodes added from now on belong to `scope` (a policy layer name; "" = glue between layers).
  void SetScope(const std::string& scope) { scope_ = scope; }
  // Op types per scope, in the order first used: (scope, [(op, count)]); contrib ops are
  // domain-qualified ("com.microsoft.MatMulNBits").
  using OpCounts = std::vector<std::pair<std::string, int>>;
  const std::vector<std::pair<std::string, OpCounts>>& ScopeOps() const { return scope_ops_; }
  // Bytes of all initializers.
  int64_t InitializerBytes() const { return initializer_bytes_; }

  // The model: IR 8, the default opset 17 and com.microsoft 1; `producer` names the writer.
  onnx::ModelProto Finish(const std::string& producer, const std::string& doc) &&;

 private:
  std::string Unique(const std::string& name);
  void CountOp(const std::string& op, const std::string& domain);

  onnx::GraphProto graph_;
  std::vector<std::string> used_;
  std::string scope_;
  std::vector<std::pair<std::string, OpCounts>> scope_ops_;
  int64_t initializer_bytes_ = 0;
  bool uses_microsoft_ = false;
};

// Writes `model` to `path` atomically. When its initializers pass `external_threshold` bytes in
// all (ONNX's protobuf limit is 2 GiB), every initializer of 1 KiB or more goes to
// `<path>.data` beside it (ONNX external data) and the .onnx holds the graph alone.
absl::Status WriteOnnxModel(onnx::ModelProto model, const std::string& path,
                            int64_t external_threshold = int64_t{1} << 31);

}  // namespace shrink::worker
