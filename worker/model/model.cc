// The facade: every torch exception stops here and becomes an absl::Status. Family-specific
// work lives in the backends (cnn_backend.cc, transformer_backend.cc).
#include "worker/model/model.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/model_files.h"
#include "common/policy.h"
#include "common/status.h"
#include "worker/checkpoint/cnn_checkpoint.h"
#include "worker/checkpoint/transformer_config.h"
#include "worker/model/cnn_backend.h"
#include "worker/model/guarded.h"
#include "worker/model/model_impl.h"
#include "worker/nn/cnn_build.h"
#include "worker/nn/torch_device.h"

namespace shrink::worker {

std::unique_ptr<Model> WrapBackend(std::unique_ptr<ModelBackend> backend) {
  auto model = std::make_unique<Model>();
  model->impl = std::make_unique<Model::Impl>();
  model->impl->backend = std::move(backend);
  return model;
}

Model::Model() = default;
Model::~Model() = default;

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& dir, const std::string& device_name) {
  SHRINK_ASSIGN_OR_RETURN(const torch::Device device, ParseDevice(device_name));
  return Guarded(absl::StrCat("loading model from ", dir), [&]() -> absl::StatusOr<std::unique_ptr<Model>> {
    // model_type picks the family; each reader validates the rest.
    const std::string config_path = absl::StrCat(dir, "/", kModelConfigFile);
    if (PathExists(config_path)) {
      SHRINK_ASSIGN_OR_RETURN(std::string text, ReadFile(config_path));
      nlohmann::json config = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (config.is_object() && config.contains("model_type") && config["model_type"].is_string() &&
          IsTransformerModelType(config["model_type"].get<std::string>())) {
        SHRINK_ASSIGN_OR_RETURN(auto backend, LoadTransformerBackend(dir, device));
        return WrapBackend(std::move(backend));
      }
      if (config.is_object() && config.contains("model_type") && config["model_type"].is_string() &&
          config["model_type"] != kCnnModelType) {
        return absl::InvalidArgumentError(absl::StrCat(config_path, ": unsupported model_type \"",
                                                       config["model_type"].get<std::string>(), "\" (supported: ",
                                                       kCnnModelType, ", bert, distilbert, roberta, gpt2)"));
      }
    }
    SHRINK_ASSIGN_OR_RETURN(CnnCheckpoint checkpoint, ReadCnnCheckpoint(dir));
    SHRINK_ASSIGN_OR_RETURN(auto backend, MakeCnnBackend(std::move(checkpoint), device));
    return WrapBackend(std::move(backend));
  });
}

shrink::v1::ModelDescription Model::Describe() const {
  if (!impl || !impl->backend) return shrink::v1::ModelDescription();
  return impl->backend->Describe();
}

std::string Model::ModelType() const { return Describe().model_type(); }

std::string Model::Device() const { return impl && impl->backend ? DeviceName(impl->backend->device) : "cpu"; }

absl::StatusOr<std::unique_ptr<Model>> Model::Apply(const shrink::v1::Policy& policy, const ApplyOptions& options) const {
  if (!impl || !impl->backend) return absl::FailedPreconditionError("Apply on an empty model");
  if (!impl->backend->IsUncompressed()) {
    return absl::FailedPreconditionError(
        "this model is already compressed; apply policies to the uncompressed model it came from");
  }
  return Guarded("applying policy", [&]() -> absl::StatusOr<std::unique_ptr<Model>> {
    SHRINK_ASSIGN_OR_RETURN(std::vector<shrink::v1::LayerAction> actions, ResolvePolicy(policy, Describe()));
    SHRINK_ASSIGN_OR_RETURN(auto backend, impl->backend->Compress(actions, PolicyToJson(policy), options));
    return WrapBackend(std::move(backend));
  });
}

absl::Status Model::Save(const std::string& dir) const {
  if (!impl || !impl->backend) return absl::FailedPreconditionError("Save on an empty model");
  return Guarded(absl::StrCat("saving model to ", dir), [&] { return impl->backend->Save(dir); });
}

absl::Status InitModel(const std::string& arch, const std::string& preset, uint64_t seed, const std::string& out_dir) {
  return Guarded(absl::StrCat("initialising ", arch, " ", preset), [&]() -> absl::Status {
    if (arch == "cnn") {
      if (preset != "reference") {
        return absl::InvalidArgumentError(absl::StrCat("unknown cnn preset \"", preset, "\" (reference)"));
      }
      torch::manual_seed(seed);
      Cnn net;
      return WriteCnnCheckpoint(CheckpointFromModule(net), out_dir);
    }
    return InitTransformer(arch, preset, seed, out_dir);
  });
}

}  // namespace shrink::worker
