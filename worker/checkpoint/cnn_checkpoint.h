// The CNN on disk: config.json (model_type "shrink-cnn", per-layer widths and
// quantization) plus model.safetensors (internal: pulls in torch).
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/model_files.h"
#include "worker/checkpoint/storage_scheme.h"
#include "worker/checkpoint/cnn_config.h"

namespace shrink::worker {

inline constexpr char kCnnModelType[] = "shrink-cnn";
// The compressible layers in forward order.
const std::vector<std::string>& CnnLayerNames();

// A CNN exactly as stored: the tensors the file holds (fp32, fp16, int8 + scales, or packed).
struct CnnCheckpoint {
  CnnWidths widths;
  std::map<std::string, LayerStorage> storage;   // every layer of CnnLayerNames()
  std::map<std::string, torch::Tensor> tensors;  // "<layer>.weight", ".bias", ".weight_scale"
  bool compressed = false;                       // produced by a compression policy
  std::string policy_json;                       // that policy, when compressed

  // True when every layer is stored in fp32 and no policy was applied.
  bool IsUncompressed() const;
};

// Validates tensors against the storage schemes and the widths the shapes imply; fills widths.
absl::Status ValidateCheckpoint(CnnCheckpoint& checkpoint, const std::string& origin);

// Reads and validates config.json + model.safetensors from `dir`.
absl::StatusOr<CnnCheckpoint> ReadCnnCheckpoint(const std::string& dir);

// The config.json text of `checkpoint`.
std::string CnnConfigJson(const CnnCheckpoint& checkpoint);

// The model.safetensors bytes of `checkpoint`.
absl::StatusOr<std::string> CnnSafetensorsBytes(const CnnCheckpoint& checkpoint);

// Writes both files into `dir` (created if needed), each atomically.
absl::Status WriteCnnCheckpoint(const CnnCheckpoint& checkpoint, const std::string& dir);

// The fp32 weight of `layer` as the runtime computes with it (dequantized / widened); needs
// validated widths for packed layers.
torch::Tensor Float32Weight(const CnnCheckpoint& checkpoint, const std::string& layer);

// Inputs per output unit of `layer`'s weight (in * k * k for convs) under `widths`.
int64_t CnnWeightColumns(const CnnWidths& widths, const std::string& layer);

}  // namespace shrink::worker
