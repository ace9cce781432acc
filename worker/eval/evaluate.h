// Measuring models: quality on a task split, bytes on disk, latency (alone or interleaved with
// another model), and the per-layer profile the agent sees. Torch-free header.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "shrink/v1/types.pb.h"
#include "worker/data/task_data.h"
#include "worker/eval/eval_options.h"
#include "worker/model/model.h"

namespace shrink::worker {

// Accuracy (classifiers) or perplexity (language models) of `model` on the split, params, flops,
// bytes on disk, median latency of one batch. Empty `data`: no quality, split ignored.
absl::StatusOr<shrink::v1::Metrics> Evaluate(const Model& model, const TaskData& data, const std::string& split,
                                             const EvalOptions& options);
// The same on Fashion-MNIST.
absl::StatusOr<shrink::v1::Metrics> Evaluate(const Model& model, const ImageDataset& data, const std::string& split,
                                             const EvalOptions& options);

// Options for Profile.
struct ProfileOptions {
  int64_t calibration_examples = 128;  // validation examples each sensitivity is measured on
  int runs = 3;                        // timed forward passes averaged for latency shares
};

// model.Describe() plus measured latency_share per layer (timed forward passes) and, when
// `data` is given, sensitivity: the quality drop (1 - retention, >= 0) on a calibration
// subset of the validation split when only that layer is compressed hard (prune 0.9 when
// prunable, else int8).
absl::StatusOr<shrink::v1::ModelDescription> Profile(const Model& model, const TaskData& data,
                                                     const EvalOptions& eval, const ProfileOptions& options);

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

}  // namespace shrink::worker
