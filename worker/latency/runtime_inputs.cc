#include "worker/latency/runtime_inputs.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace shrink::worker {

RuntimeTensor ToRuntimeTensor(const at::Tensor& tensor) {
  const bool ids = tensor.scalar_type() == torch::kInt64;
  torch::Tensor c = tensor.to(torch::kCPU, ids ? torch::kInt64 : torch::kFloat32).contiguous();
  return RuntimeTensor{ids ? "int64" : "float32", c.sizes().vec(),
                       std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size())};
}

absl::StatusOr<at::Tensor> FromRuntimeTensor(const RuntimeTensor& tensor) {
  if (tensor.type != "float32") {
    return absl::InvalidArgumentError(absl::StrCat("expected a float32 tensor, got ", tensor.type));
  }
  std::vector<float> values = tensor.Floats();
  return torch::from_blob(values.data(), tensor.dims, torch::kFloat32).clone();
}

absl::StatusOr<PastInputShapes> ReadPastInputShapes(const std::string& export_json) {
  nlohmann::json manifest = nlohmann::json::parse(export_json, nullptr, false);
  if (manifest.is_discarded() || !manifest.is_object()) return absl::InvalidArgumentError("export.json is not a JSON object");
  PastInputShapes shapes;
  for (const nlohmann::json& input : manifest.value("inputs", nlohmann::json::array())) {
    const std::string name = input.value("name", "");
    const nlohmann::json shape = input.value("shape", nlohmann::json::array());
    if (absl::StartsWith(name, "past_key_values.") && shape.size() == 4 && shape[1].is_number() &&
        shape[3].is_number()) {
      shapes[name] = {shape[1].get<int64_t>(), shape[3].get<int64_t>()};
    }
  }
  return shapes;
}

void AddEmptyPastInputs(const PastInputShapes& shapes, int64_t batch, std::map<std::string, RuntimeTensor>* feeds) {
  for (const auto& [name, dims] : shapes) {
    if (feeds->count(name) == 0) (*feeds)[name] = RuntimeTensor{"float32", {batch, dims.first, 0, dims.second}, ""};
  }
}

}  // namespace shrink::worker
