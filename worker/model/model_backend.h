// One model family behind the Model facade (internal): the CNN and the
// transformers each implement this, so Load/Describe/Apply/Save/Evaluate stay
// one API. Implementations may throw c10::Error; the facade catches it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shrink/v1/types.pb.h"
#include "worker/data/task_data.h"
#include "worker/eval/eval_options.h"
#include "worker/model/model.h"

namespace shrink::worker {

// Quality on a data split: accuracy for classifiers, perplexity for language models.
struct Quality {
  double accuracy = 0;
  double perplexity = 0;  // 0 = not a language model
  int64_t examples = 0;
};

// Training examples whose inputs calibrate 4..7-bit layers (GPTQ).
inline constexpr int64_t kCalibrationExamples = 128;

class ModelBackend {
 public:
  virtual ~ModelBackend() = default;

  // Layers in forward order with shapes, params, FLOPs per example (no measured fields).
  virtual shrink::v1::ModelDescription Describe() const = 0;
  // True when every layer is fp32 and no policy was applied.
  virtual bool IsUncompressed() const = 0;
  // A new backend with validated `actions` (one per described layer) applied; 4..7-bit
  // layers are calibrated (GPTQ) on kCalibrationExamples training examples of
  // options.data when it has data, else rounded to nearest.
  virtual absl::StatusOr<std::unique_ptr<ModelBackend>> Compress(const std::vector<shrink::v1::LayerAction>& actions,
                                                                 const std::string& policy_json,
                                                                 const ApplyOptions& options) const = 0;
  // Writes the model's files into `dir`.
  virtual absl::Status Save(const std::string& dir) const = 0;
  // Bytes Save writes.
  virtual int64_t bytes() const = 0;
  // Accuracy / perplexity on the first `max_examples` (0 = all) of `split`; CANCELLED between
  // batches once `recalled` is set.
  virtual absl::StatusOr<Quality> Measure(const TaskData& data, const std::string& split, int64_t max_examples,
                                          const RecallFlag* recalled) const = 0;
  // The named inputs of one timed pass, as the exported graph takes them ("input_ids" and
  // "attention_mask", or "images"), on the CPU: a fixed synthetic batch of *examples examples.
  virtual std::map<std::string, at::Tensor> LatencyInputs(const EvalOptions& options, int* examples) const = 0;
  // A closure running one forward pass on LatencyInputs' batch of `batch` examples
  // (transformers: sequences of `sequence_length` tokens). Examples per pass in *examples.
  virtual std::function<void()> LatencyProbe(const EvalOptions& options, int* examples) const = 0;
  // Milliseconds spent in each described layer during one forward pass of the probe batch.
  virtual std::vector<double> LayerTimes(const EvalOptions& options) const = 0;

  // Where the runtime module computes; Compress builds its result there too. The stored form
  // (checkpoint tensors) and the compression passes stay on the CPU.
  c10::Device device = c10::kCPU;
};

}  // namespace shrink::worker
