// The reference CNN behind the Model facade (internal: pulls in torch): its stored
// checkpoint, the runtime module built from it, and measuring on Fashion-MNIST.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "worker/checkpoint/cnn_checkpoint.h"
#include "worker/model/model_backend.h"
#include "worker/nn/cnn.h"

namespace shrink::worker {

// The reference CNN: its stored form and the runtime module built from it.
class CnnBackend : public ModelBackend {
 public:
  shrink::v1::ModelDescription Describe() const override;
  bool IsUncompressed() const override { return checkpoint.IsUncompressed(); }
  absl::StatusOr<std::unique_ptr<ModelBackend>> Compress(const std::vector<shrink::v1::LayerAction>& actions,
                                                         const std::string& policy_json,
                                                         const ApplyOptions& options) const override;
  absl::Status Save(const std::string& dir) const override;
  int64_t bytes() const override { return bytes_; }
  absl::StatusOr<Quality> Measure(const TaskData& data, const std::string& split, int64_t max_examples,
                                  const RecallFlag* recalled) const override;
  std::map<std::string, at::Tensor> LatencyInputs(const EvalOptions& options, int* examples) const override;
  std::function<void()> LatencyProbe(const EvalOptions& options, int* examples) const override;
  std::vector<double> LayerTimes(const EvalOptions& options) const override;

  CnnCheckpoint checkpoint;  // the stored form: what Save writes
  Cnn net{nullptr};          // the runtime form built from it, always in eval mode
  int64_t bytes_ = 0;        // config.json + model.safetensors as Save writes them
};

// A CNN backend around `checkpoint` (validated): builds the runtime module on `device`.
absl::StatusOr<std::unique_ptr<CnnBackend>> MakeCnnBackend(CnnCheckpoint checkpoint, torch::Device device = torch::kCPU);

}  // namespace shrink::worker
