// Group-wise 4–7-bit weight-only quantization into the packed form of
// worker/checkpoint/packed_weight.h: asymmetric min-max scales per (row, group),
// rounded to nearest (RTN) or with GPTQ error correction from calibration inputs
// (internal: pulls in torch).
#pragma once

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "worker/checkpoint/packed_weight.h"

namespace shrink::worker {

// Options of QuantizeGroupwise.
struct GroupQuantOptions {
  int bits = 4;               // 4..7 bits per weight
  int64_t group_size = 128;   // columns sharing one scale and zero point
  double damping = 0.01;      // GPTQ: added to H's diagonal as a fraction of its mean diagonal
  int64_t block_size = 128;   // GPTQ: columns per lazy batch update
};

// Quantizes `weight` [out, in]. Without calibration inputs (calibration.data == nullptr)
// it rounds each weight to the nearest level of its group's min-max grid (RTN); with
// inputs X [n, in] it runs GPTQ (Frantar et al. 2022, Alg. 1) on H = 2 XᵀX / n.
absl::StatusOr<PackedGroupWeight> QuantizeGroupwise(FloatMatrixView weight, const GroupQuantOptions& options,
                                                    FloatMatrixView calibration = {});

// Quantizes an fp32 weight (2-D [out, in], or a conv weight flattened to [out, in*k*k]).
// `calibration` [n, in] fp32 runs GPTQ; undefined = round to nearest (RTN).
absl::StatusOr<PackedGroupWeight> QuantizeTensorGroupwise(const torch::Tensor& weight, int bits, int64_t group_size,
                                                          const torch::Tensor& calibration);

// Keeps at most `max_rows` rows of calibration inputs [n, in] (an even stride), as fp32.
torch::Tensor SubsampleRows(const torch::Tensor& inputs, int64_t max_rows);

}  // namespace shrink::worker
