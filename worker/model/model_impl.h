// Model's torch side (internal; tests use it to reach the modules).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <torch/torch.h>

#include "worker/model/model.h"
#include "worker/model/model_backend.h"

namespace shrink::worker {

class CnnBackend;
class TransformerBackend;

struct Model::Impl {
  std::unique_ptr<ModelBackend> backend;

  // The backend as a CNN / transformer, or nullptr when it is the other kind.
  CnnBackend* cnn() const;
  TransformerBackend* transformer() const;
};

// A model around a backend.
std::unique_ptr<Model> WrapBackend(std::unique_ptr<ModelBackend> backend);

// Loads a transformer directory (transformer_backend.cc); its runtime module computes on `device`.
absl::StatusOr<std::unique_ptr<ModelBackend>> LoadTransformerBackend(const std::string& dir,
                                                                     torch::Device device = torch::kCPU);

// Writes a random transformer of a preset shape (transformer_backend.cc).
absl::Status InitTransformer(const std::string& arch, const std::string& preset, uint64_t seed,
                             const std::string& out_dir);

}  // namespace shrink::worker
