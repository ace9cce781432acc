// Predictions from a model folder, in Shrink's own runtime (LibTorch) or in ONNX Runtime on
// the model's export, with the same framing and decoding either way: labels with their
// probabilities for classifiers (the CNN included), greedy generation for language models.
// Torch-free header.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace shrink::worker {

enum class PredictRuntime { kLibTorch, kOnnxRuntime };

// "libtorch" | "onnxruntime"; InvalidArgument names the flag's allowed values.
absl::StatusOr<PredictRuntime> ParsePredictRuntime(const std::string& name);

// Options of a prediction.
struct PredictOptions {
  PredictRuntime runtime = PredictRuntime::kLibTorch;
  int64_t max_new_tokens = 32;  // language models: tokens generated greedily
  int64_t top_labels = 3;       // classifiers: labels listed per input, most likely first
  int threads = 1;              // intra-op threads
};

// One input's prediction.
struct Prediction {
  std::string input;                                   // the text, or "image N"
  std::vector<std::pair<std::string, double>> labels;  // classifiers: (label, probability)
  std::string generated;                               // language models: the continuation
  std::vector<int64_t> generated_ids;                  // its token ids
};

// Predicts for each text with the transformer in `dir`. LibTorch needs the model files
// (config.json + model.safetensors); ONNX Runtime uses dir/model.onnx with its export.json
// (an export folder or a fetched artifact), or exports the model files to a temporary folder.
absl::StatusOr<std::vector<Prediction>> PredictTexts(const std::string& dir, const std::vector<std::string>& texts,
                                                     const PredictOptions& options);

// Predicts classes for the first `limit` images (0 = all) of an idx image file (gzip or raw,
// Fashion-MNIST's format) with the CNN in `dir`.
absl::StatusOr<std::vector<Prediction>> PredictImages(const std::string& dir, const std::string& idx_path,
                                                      int64_t limit, const PredictOptions& options);

}  // namespace shrink::worker
