// Exporting a loaded model for deployment: model.onnx (ONNX Runtime 1.30, CPU), its tokenizer
// files, and export.json describing the inputs, outputs, opsets and each layer's ops. Torch-free
// header; the exporters behind it are worker/export/{cnn,transformer}_export.h.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "worker/model/model.h"

namespace shrink::worker {

// The files an export writes.
inline constexpr char kOnnxFile[] = "model.onnx";
inline constexpr char kOnnxDataFile[] = "model.onnx.data";  // ONNX external data, for models over 2 GiB
inline constexpr char kExportManifestFile[] = "export.json";

// How 4..7-bit layers compute in the export.
enum class LowBitKernel {
  kInt8,         // as in Shrink's runtime: int8 weights requantized at load from the packed codes
  kMatMulNBits,  // com.microsoft MatMulNBits on the packed codes
};

// Options of an export.
struct ExportOptions {
  // kInt8 computes what Shrink measured during the search and is the faster on prefill; MatMulNBits
  // reads 4 bits per weight, which helps memory-bound decoding (BENCHMARKS.md).
  LowBitKernel low_bit_kernel = LowBitKernel::kInt8;
  // With MatMulNBits, its accuracy_level for 4-bit layers: 4 computes with int8 activations (~5e-3
  // off the stored weights' result, like the int8 layers; faster than 0 here), 0 with fp32
  // activations (exact). 5..7-bit layers always use 4: ONNX Runtime runs 8-bit blocks no other way.
  int64_t nbits_accuracy_level = 4;
  // Initializer bytes past which the weights go to model.onnx.data (ONNX's protobuf limit is 2 GiB).
  int64_t external_data_threshold = int64_t{1} << 31;
};

// What an export wrote.
struct ExportResult {
  int64_t onnx_bytes = 0;    // model.onnx (+ model.onnx.data)
  std::string manifest_json;  // export.json's text
};

// How to serve the model, as export.json's "task" (JSON text): "kind" (text_classification,
// language_modelling or image_classification), "labels" by class id, and for text the
// "pad_token_id" and "max_sequence"; for images the "preprocessing" (pixel/255, mean, std).
std::string ServingInfoJson(const Model& model);

// Writes model.onnx (+ model.onnx.data), export.json and the tokenizer files into the existing
// folder `dir`, each file atomically. Errors name the layer and scheme that cannot be exported.
absl::StatusOr<ExportResult> WriteOnnxExport(const Model& model, const std::string& dir,
                                             const ExportOptions& options = {});

// `shrink export`: the same into `out_dir`, which must not exist or be empty; everything is
// written to a temporary folder beside it and renamed into place, so a failed export leaves
// nothing behind.
absl::StatusOr<ExportResult> ExportModel(const Model& model, const std::string& out_dir,
                                         const ExportOptions& options = {});

}  // namespace shrink::worker
