// The transformer families behind the Model facade (internal: pulls in torch):
// stored weights, the runtime module, the tokenizer, and measuring on text.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "worker/data/token_batches.h"
#include "worker/model/model_backend.h"
#include "worker/nn/transformer.h"
#include "worker/checkpoint/transformer_checkpoint.h"

namespace shrink::worker {

// Longest sequence (tokens) used when measuring on text; shorter models use their own limit.
inline constexpr int64_t kTextMaxLength = 128;

// Sum of next-token negative log-likelihoods and the number of predicted tokens of a batch
// (computed on the module's device).
std::pair<double, int64_t> LmLoss(Transformer& net, const TokenBatch& batch);

class TransformerBackend : public ModelBackend {
 public:
  shrink::v1::ModelDescription Describe() const override;
  bool IsUncompressed() const override { return weights.IsUncompressed(); }
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

  // The padding id sequences are filled with.
  int64_t PadId() const;

  TransformerWeights weights;                   // the stored form: what Save writes
  Transformer net{nullptr};                     // the runtime form, always in eval mode
  std::shared_ptr<const Tokenizer> tokenizer;   // null when the folder has no tokenizer files
  int64_t bytes_ = 0;
};

// A backend around validated weights: builds the module on `device` and counts the bytes Save writes.
absl::StatusOr<std::unique_ptr<TransformerBackend>> MakeTransformerBackend(TransformerWeights weights,
                                                                           std::shared_ptr<const Tokenizer> tokenizer,
                                                                           torch::Device device = torch::kCPU);

}  // namespace shrink::worker
