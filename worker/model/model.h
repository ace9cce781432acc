// The worker's model facade: load, describe, compress, save, evaluate and
// train models without pulling LibTorch into the includer (torch lives in the
// .cc files and the internal headers behind the Impl pointers).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/task_files.h"
#include "shrink/v1/types.pb.h"
#include "common/recall.h"

namespace shrink::worker {

// Options for measuring a model.
struct EvalOptions {
  int threads = 0;           // intra-op threads for latency and accuracy; 0 = all cores
  int latency_batch = 32;    // images per timed forward pass (CNN)
  int text_latency_batch = 8;  // sequences per timed forward pass (transformers)
  int sequence_length = 128;   // tokens per synthetic sequence (transformer latency and FLOPs)
  int warmup_runs = 3;
  int timed_runs = 15;       // latency_ms = median of these
  bool time_latency = true;  // false: no timed passes (latency_ms 0), for callers that time elsewhere
  int64_t max_examples = 0;  // accuracy on the first N examples of the split; 0 = all
  const RecallFlag* recalled = nullptr;  // checked between batches and timed runs: CANCELLED once set
};

// Transformer FLOPs per example in Describe() are counted for sequences of this many tokens.
inline constexpr int64_t kDescribeSequenceLength = 128;

// Fashion-MNIST in memory. Splits: "train" = first 55000 training images,
// "validation" = last 5000 training images, "test" = the 10000 t10k images.
// Immutable, safe to share across threads.
class ImageDataset {
 public:
  // `files` maps the standard file names (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
  // t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) to paths; gz or raw idx accepted.
  // Bad files -> InvalidArgument naming the file and what is wrong.
  static absl::StatusOr<std::shared_ptr<const ImageDataset>> LoadFashionMnist(
      const std::map<std::string, std::string>& files);

  // Examples in `split`; 0 for an unknown split.
  int64_t Size(const std::string& split) const;

  struct Impl;
  std::shared_ptr<const Impl> impl;  // torch tensors inside (float [N,1,28,28] normalized, int64 labels)
};

struct TextDataset;  // worker/text_data.h: texts with labels (classification) or without (LM)

// The data a model is measured on: images (Fashion-MNIST) or text. Both null =
// no task: Evaluate then reports bytes, params and latency on synthetic input only.
struct TaskData {
  std::string name;  // "fashion-mnist", "fortunes-topic", "fortunes-lm", or a file
  std::shared_ptr<const ImageDataset> images;
  std::shared_ptr<const TextDataset> text;

  bool empty() const { return !images && !text; }
};

// How structured pruning ranks heads / neurons / channels.
enum class PruneCriterion {
  kMagnitude,   // weight L1 norms
  kActivation,  // each unit's output on the calibration data as the next layer sees it (magnitude without data)
};

// Knowledge distillation from the uncompressed model (the teacher) while a policy is applied:
// pruning runs in two stages (half the ratio, distill, the rest, distill), then quantization.
// The loss is the task loss + temperature-scaled KL on the logits + each layer's feature
// matching (transformers: block outputs and attention maps; CNN: feature maps) weighted by
// that layer's distill strength. Steps = max_steps when any layer's strength is above 0.
struct DistillOptions {
  int64_t max_steps = 0;        // optimizer steps when the policy distills; 0 = no distillation
  int64_t batch_size = 32;      // training examples per step
  double learning_rate = 0;     // AdamW; 0 = the family's default (transformers 1e-4, CNN 5e-4)
  double temperature = 2.0;     // softens teacher and student logits in the KL term
  uint64_t seed = 0;            // batch order and dropout
  const RecallFlag* recalled = nullptr;  // checked before every step
};

// Distillation steps per candidate during search (brief) and for the finalized model (full).
inline constexpr int64_t kSearchDistillSteps = 30;
inline constexpr int64_t kFinalDistillSteps = 300;

// Options of Model::Apply.
struct ApplyOptions {
  // The task's data: 4..7-bit layers calibrate (GPTQ) and kActivation ranks units on 128
  // training examples (empty = round to nearest, magnitude); distillation trains on its training
  // split (empty = no distillation).
  TaskData data;
  PruneCriterion criterion = PruneCriterion::kMagnitude;
  DistillOptions distill;
};

// Options for Model::Profile.
struct ProfileOptions {
  int64_t calibration_examples = 128;  // validation examples each sensitivity is measured on
  int runs = 3;                        // timed forward passes averaged for latency shares
};

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

  // Describe() plus measured latency_share per layer (timed forward passes) and, when
  // `data` is given, sensitivity: the quality drop (1 - retention, >= 0) on a calibration
  // subset of the validation split when only that layer is compressed hard (prune 0.9 when
  // prunable, else int8).
  absl::StatusOr<shrink::v1::ModelDescription> Profile(const TaskData& data, const EvalOptions& eval,
                                                       const ProfileOptions& options) const;

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

  // Accuracy (classifiers) or perplexity (language models) on the split, params, flops,
  // bytes on disk, median latency of one batch. Empty `data`: no quality, split ignored.
  absl::StatusOr<shrink::v1::Metrics> Evaluate(const TaskData& data, const std::string& split,
                                               const EvalOptions& options) const;
  // The same on Fashion-MNIST.
  absl::StatusOr<shrink::v1::Metrics> Evaluate(const ImageDataset& data, const std::string& split,
                                               const EvalOptions& options) const;

  struct Impl;
  std::unique_ptr<Impl> impl;
};

// Two models' median latencies of one batch each, from TimeInterleaved.
struct LatencyPair {
  double first_ms = 0;
  double second_ms = 0;
  int threads = 0;  // intra-op threads both were timed with
};
// Times both models in alternating passes (a, b, a, b, ...) after both warm up, so that a
// change of load during the measurement slows both alike and their ratio (the speedup)
// stays fair. Batches as in Evaluate.
absl::StatusOr<LatencyPair> TimeInterleaved(const Model& first, const Model& second, const EvalOptions& options);

struct TrainOptions {
  std::string preset = "reference";  // transformers: shape preset (see InitModel)
  int64_t vocab_size = 8000;         // transformers: vocabulary built from the training split
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

// Writes a randomly initialised model of a known shape into `out_dir`: arch cnn (preset
// "reference"), bert (base, reference, deep, tiny) or gpt2 (small, reference, tiny); seeded.
absl::Status InitModel(const std::string& arch, const std::string& preset, uint64_t seed, const std::string& out_dir);

// Trains a small transformer from scratch on a text dataset: arch "bert" (sequence
// classification; WordPiece vocabulary) or "gpt2" (language modelling; byte-level BPE),
// both vocabularies built from the training split. Saves HF files (config.json,
// model.safetensors, tokenizer files) to out_dir. Deterministic for a seed and thread count.
absl::StatusOr<TrainReport> TrainTransformer(const std::string& arch, const TextDataset& data,
                                             const TrainOptions& options, const std::string& out_dir,
                                             const std::function<void(const std::string&)>& progress);

// Sets LibTorch's intra-op threads (0 = all cores) and the ONEDNN quantized engine;
// returns the thread count now in use. Process-wide; Evaluate and TrainCnn call it themselves.
int ConfigureTorch(int threads);

}  // namespace shrink::worker
