// Structural pruning of the CNN: output channels / neurons ranked by weight L1 or by their
// activations on calibration images, then physically removed with the next layer's matching
// inputs (internal: pulls in torch).
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "shrink/v1/types.pb.h"
#include "worker/checkpoint/cnn_checkpoint.h"

namespace shrink::worker {

// Output units each layer keeps, by layer name: sorted int64 indices.
using KeptUnits = std::map<std::string, torch::Tensor>;

// The output units kept when round(ratio * out) units with the smallest L1 weight
// norm are removed (at least one unit stays); ties keep the lower index.
torch::Tensor KeptUnitsByL1(const torch::Tensor& weight, double ratio);

// Data-aware importance of each prunable layer's units on calibration `images` [n, in, 28, 28]:
// the mean over images (and output pixels) of the L2 norm of what the unit adds to the next
// layer's pre-activation, i.e. of W_next[:, unit] applied to the unit's output after ReLU (and
// pooling) — what removing the unit changes downstream. conv1 channels are scored through conv2,
// conv2 channels through their 49 fc1 columns, fc1 neurons as mean |a| x the fc2 column's L2
// norm. A unit that never fires on the images, or whose outgoing weights are zero, scores 0.
// Keys conv1, conv2, fc1; float64 [units] each. Needs fp32 weights (`checkpoint` not quantized).
absl::StatusOr<std::map<std::string, torch::Tensor>> CnnActivationImportance(const CnnCheckpoint& checkpoint,
                                                                             const torch::Tensor& images);

// The kept units of every layer under `actions` (one per layer, in CnnLayerNames() order):
// ranked by `importance[layer]` where given (CnnActivationImportance), else by weight L1.
KeptUnits ChooseKeptUnits(const CnnCheckpoint& fp32, const std::vector<shrink::v1::LayerAction>& actions,
                          const std::map<std::string, torch::Tensor>& importance = {});

// Physically removes every unit not in `kept` (layers absent from `kept` stay whole) and
// the next layer's matching input columns (49 per conv2 channel for fc1).
absl::StatusOr<CnnCheckpoint> PruneCnn(const CnnCheckpoint& fp32, const KeptUnits& kept);

}  // namespace shrink::worker
