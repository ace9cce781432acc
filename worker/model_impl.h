// Model's torch side (internal; tests use it to reach the module).
#pragma once

#include <cstdint>

#include "worker/cnn.h"
#include "worker/cnn_checkpoint.h"
#include "worker/model.h"

namespace shrink::worker {

struct Model::Impl {
  CnnCheckpoint checkpoint;  // the stored form: what Save writes
  Cnn net{nullptr};          // the runtime form built from it, always in eval mode
  int64_t bytes = 0;         // config.json + model.safetensors as Save writes them
};

// A model around `checkpoint` (validated): builds the runtime module.
absl::StatusOr<std::unique_ptr<Model>> MakeModel(CnnCheckpoint checkpoint);

}  // namespace shrink::worker
