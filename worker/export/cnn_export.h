// The shrink-cnn as an ONNX graph (internal: pulls in torch): images [batch, C, 28, 28]
// -> logits [batch, classes], every layer in its stored form (worker/export/onnx_weights.h).
#pragma once

#include "absl/status/statusor.h"
#include "worker/checkpoint/cnn_checkpoint.h"
#include "worker/export/onnx_graph.h"
#include "worker/export/onnx_weights.h"

namespace shrink::worker {

// Input and output names of an exported CNN.
inline constexpr char kCnnOnnxInput[] = "images";
inline constexpr char kCnnOnnxOutput[] = "logits";

// The graph of a validated checkpoint.
absl::StatusOr<OnnxGraph> CnnToOnnx(const CnnCheckpoint& checkpoint, const LowBitLinearOptions& low_bit = {});

// The stored weight of one CNN layer ("conv1", "conv2", "fc1", "fc2").
StoredWeight CnnStoredWeight(const CnnCheckpoint& checkpoint, const std::string& layer);

}  // namespace shrink::worker
