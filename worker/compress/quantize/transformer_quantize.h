// Quantization of transformers: each layer re-stored at its bit width (group-wise packed by
// GPTQ or round to nearest, int8, fp16), with the calibration inputs GPTQ needs recorded on
// real token batches (internal: pulls in torch).
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/recall.h"
#include "worker/checkpoint/transformer_checkpoint.h"

namespace shrink::worker {

// Inputs each linear module saw on calibration data, by canonical module name: fp32 [n, in].
using DenseInputs = std::map<std::string, torch::Tensor>;

// Token batches that calibrate 4..7-bit layers (ids, mask [B, T], 1 = token).
struct CalibrationBatch {
  torch::Tensor ids, mask;
};

// Most calibration rows (tokens) kept per module for GPTQ's Hessian.
inline constexpr int64_t kMaxCalibrationRows = 2048;

// Runs `weights` (fp32 in the named modules) on `batches` on `device` and records the inputs
// of `modules` at real (unmasked) tokens, at most `max_rows` rows each (returned on the CPU).
absl::StatusOr<DenseInputs> RecordDenseInputs(const TransformerWeights& weights,
                                              const std::vector<CalibrationBatch>& batches,
                                              const std::vector<std::string>& modules, int64_t max_rows,
                                              torch::Device device = torch::kCPU);

// Re-stores each named layer at its bits: 4..7 = group-wise packed (GPTQ on the module's
// `inputs` when recorded, round to nearest otherwise; embeddings always RTN per row),
// 8 = int8, 9..16 = fp16, 32 = unchanged. CANCELLED between layers once `recalled` is set.
absl::StatusOr<TransformerWeights> QuantizeTransformer(const TransformerWeights& fp32,
                                                       const std::map<std::string, int>& bits,
                                                       const DenseInputs& inputs = {},
                                                       const RecallFlag* recalled = nullptr);

}  // namespace shrink::worker
