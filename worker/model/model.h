// The worker's model facade: load, describe, compress and save models without pulling
// LibTorch into the includer (torch lives in the .cc files and the internal headers behind
// the Impl pointer). Measuring is eval/evaluate.h, training train/train.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shrink/v1/types.pb.h"
#include "worker/compress/compress_options.h"

namespace shrink::worker {

// Transformer FLOPs per example in Describe() are counted for sequences of this many tokens.
inline constexpr int64_t kDescribeSequenceLength = 128;

// A loaded model, uncompressed or compressed. Const methods are thread-safe.
class Model {
 public:
  // Loads config.json + model.safetensors from `dir` (model_type shrink-cnn, bert,
  // distilbert, roberta or gpt2; transformers also load their tokenizer files when
  // present); layer widths come from tensor shapes. The model computes on `device`
  // ("cpu" or "cuda:N", worker/device.h; InvalidArgument when unavailable): evaluation,
  // latency, profiling and calibration run there, and models Apply makes stay there. On a
  // GPU, int8 and 4..7-bit layers keep their stored form (same bytes) but compute with
  // dequantized fp16 weights, since LibTorch's int8 linear kernels (ONEDNN) are CPU-only.
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& dir, const std::string& device = "cpu");

  Model();
  ~Model();

  // The compressible layers in forward order with their shapes, parameters and FLOPs.
  shrink::v1::ModelDescription Describe() const;

  // "shrink-cnn", "bert", "distilbert", "roberta" or "gpt2".
  std::string ModelType() const;

  // The device it computes on: "cpu" or "cuda:N".
  std::string Device() const;

  // A new model with the policy applied (structural pruning, distillation when the policy asks
  // for it and options.distill allows steps, then quantization). 4..7-bit layers are calibrated
  // with GPTQ on the options' data (128 training examples) when given, else rounded to
  // nearest. Only an uncompressed model can be compressed (FailedPrecondition otherwise).
  absl::StatusOr<std::unique_ptr<Model>> Apply(const shrink::v1::Policy& policy,
                                               const ApplyOptions& options = ApplyOptions()) const;

  // Writes config.json + model.safetensors into `dir` (created if needed), each file atomically.
  absl::Status Save(const std::string& dir) const;

  struct Impl;
  std::unique_ptr<Impl> impl;
};

// Writes a randomly initialised model of a known shape into `out_dir`: arch cnn (preset
// "reference"), bert (base, reference, deep, tiny) or gpt2 (small, reference, tiny); seeded.
absl::Status InitModel(const std::string& arch, const std::string& preset, uint64_t seed, const std::string& out_dir);

}  // namespace shrink::worker
