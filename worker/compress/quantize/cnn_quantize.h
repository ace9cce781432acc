// Quantization of the CNN: each layer re-stored at its bit width (group-wise packed by GPTQ or
// round to nearest, int8, fp16), with the inputs GPTQ needs recorded on calibration images
// (internal: pulls in torch).
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "worker/checkpoint/cnn_checkpoint.h"

namespace shrink::worker {

// Inputs each layer's weight multiplies, by layer, on calibration images: [n, in] for linears,
// im2col patches [n, in*k*k] for convs; at most `max_rows` rows each (fp32 `checkpoint`).
std::map<std::string, torch::Tensor> RecordCnnInputs(const CnnCheckpoint& checkpoint, const torch::Tensor& images,
                                                     int64_t max_rows);

// Re-stores each layer at its bits: 4..7 = group-wise packed (GPTQ on `inputs[layer]` when
// present, else round to nearest), 8 = int8 (+ fp32 scales), 9..16 = fp16, 32 = unchanged.
absl::StatusOr<CnnCheckpoint> QuantizeCnn(const CnnCheckpoint& fp32, const std::map<std::string, int>& bits,
                                          const std::map<std::string, torch::Tensor>& inputs = {});

}  // namespace shrink::worker
