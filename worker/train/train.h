// Training models from scratch: the reference CNN on Fashion-MNIST and small transformers on
// text. Torch-free header.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "worker/data/image_dataset.h"

namespace shrink::worker {

struct TextDataset;  // worker/data/text_data.h

struct TrainOptions {
  std::string preset = "reference";  // transformers: shape preset (see InitModel, model/model.h)
  int64_t vocab_size = 8000;         // transformers: vocabulary built from the training split
  // Transformers: fine-tune from this uncompressed model folder (its shape, weights and tokenizer;
  // a classifier gets a new head for the task's labels, a language model continues); empty =
  // from scratch, with `preset` and `vocab_size`.
  std::string init_dir;
  int max_length = 128;              // transformers: tokens per training sequence
  double max_seconds = 0;            // transformers: stop after the epoch that passes this; 0 = no limit
  int epochs = 3;
  int batch_size = 64;
  double learning_rate = 1e-3;
  uint64_t seed = 0;
  int threads = 0;
  int64_t max_train_examples = 0;  // 0 = all 55000
};

struct TrainReport {
  double validation_accuracy = 0;
  double test_accuracy = 0;
  double validation_perplexity = 0;  // language models
  double test_perplexity = 0;
  int epochs = 0;                    // epochs run
  double seconds = 0;
  int64_t params = 0;
};

// Trains the reference CNN from scratch, deterministically for a fixed seed, saves it to
// out_dir and reports accuracies. `progress` gets one human line per epoch (may be null).
absl::StatusOr<TrainReport> TrainCnn(const ImageDataset& data, const TrainOptions& options,
                                     const std::string& out_dir,
                                     const std::function<void(const std::string&)>& progress);

// Trains a transformer on a text dataset: arch "bert" (sequence classification) or "gpt2"
// (language modelling). From scratch, the vocabulary (WordPiece / byte-level BPE) is built
// from the training split; with options.init_dir the model and tokenizer come from that folder.
// Saves HF files (config.json, model.safetensors, tokenizer files) to out_dir. Deterministic for
// a seed and thread count.
absl::StatusOr<TrainReport> TrainTransformer(const std::string& arch, const TextDataset& data,
                                             const TrainOptions& options, const std::string& out_dir,
                                             const std::function<void(const std::string&)>& progress);

}  // namespace shrink::worker
