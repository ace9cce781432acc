// The CNN's runtime module built from its stored checkpoint, and the checkpoint of a trained
// module (internal: pulls in torch).
#pragma once

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "worker/checkpoint/cnn_checkpoint.h"
#include "worker/nn/cnn.h"

namespace shrink::worker {

// The checkpoint of a trained fp32 module.
CnnCheckpoint CheckpointFromModule(Cnn& net);

// The runtime module (eval mode) on `device`: fp32 convs, fp32 or int8-kernel linears (on a GPU
// the int8 / 4..7-bit linears compute with their dequantized weights in fp16, see Int8Linear).
absl::StatusOr<Cnn> BuildCnn(const CnnCheckpoint& checkpoint, torch::Device device = torch::kCPU);

}  // namespace shrink::worker
