// A transformer's runtime module built from its stored weights, and the weights of a trained
// module (internal: pulls in torch).
#pragma once

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "worker/checkpoint/transformer_checkpoint.h"
#include "worker/nn/transformer.h"

namespace shrink::worker {

// The fp32 checkpoint of a module (trained or freshly initialised).
TransformerWeights WeightsFromModule(Transformer& net);

// The runtime module (eval mode) built from validated weights, on `device`. On the CPU int8 and
// 4..7-bit linears run ONEDNN int8 kernels; on a GPU they compute with their dequantized weights
// in fp16 (Int8Linear); fp16-stored and fp32 layers compute in fp32 on both.
absl::StatusOr<Transformer> BuildTransformer(const TransformerWeights& weights, torch::Device device = torch::kCPU);

}  // namespace shrink::worker
