// How Shrink's stored weights become ONNX nodes, one storage scheme at a time
// (internal: pulls in torch). The file holds the weights as stored — int8 values and
// scales, packed group-wise codes, fp16; other forms are computed at load by foldable nodes:
//   fp32 / fp16            MatMul with the (Cast) weight
//   int8 per channel/tensor com.microsoft DynamicQuantizeMatMul (int8 B [K, N], fp32 scales)
//   group-wise, default    DynamicQuantizeMatMul on int8 weights requantized at load from the
//                          packed codes (what Shrink's own runtime computes)
//   group-wise 4 bits,     com.microsoft MatMulNBits (bits 4), the codes repacked per block,
//     nbits kernel         plus an exact per-block correction for Shrink's fractional zero points
//   group-wise 5..7 bits,  the same with bits 8: ONNX Runtime's CPU kernel runs 2, 4 and 8 bits
//     nbits kernel         only (8 with int8 activations), and 8-bit blocks hold the codes exactly
// Convs and embedding tables that are stored compressed are widened by nodes that ONNX Runtime
// folds into constants when it loads the model, so the file keeps the stored bytes.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "worker/checkpoint/storage_scheme.h"
#include "worker/export/onnx_graph.h"

namespace shrink::worker {

// One layer's weight exactly as a checkpoint stores it.
struct StoredWeight {
  std::string layer;    // the policy layer (or module) it belongs to, for errors and export.json
  std::string scheme;   // fp32 | fp16 | int8_* | groupwise (the checkpoint's scheme names)
  int bits = 32;
  int64_t group_size = 0;
  int64_t out = 0;      // rows
  int64_t in = 0;       // columns (in * k * k for a conv)
  torch::Tensor weight;  // fp32 / fp16 / int8 values, [out, ...]
  torch::Tensor scale;   // int8: fp32 [out] or [1]
  torch::Tensor packed, scales, zeros;  // group-wise: U8 codes, F16 [out, groups] twice
  torch::Tensor bias;    // fp32 [out], or undefined
};

// The stored weight of `layer` from a checkpoint's tensors ("<layer>.weight" with ".weight_scale",
// or ".weight_packed" with ".weight_scales" / ".weight_zeros"; ".bias" when present); `in` is the
// weight's columns (the tensors do not say it for packed codes).
StoredWeight StoredWeightOf(const std::string& layer, const LayerStorage& storage,
                            const std::map<std::string, torch::Tensor>& tensors, int64_t in);

// Initializers already in the graph by key ("<layer>.weight_packed", ...), so that a tied
// embedding and LM head share one copy of the stored table.
using SharedInitializers = std::map<std::string, std::string>;

// The ONNX element type of a tensor's dtype; -1 for one ONNX cannot hold.
int OnnxType(torch::ScalarType type);

// Adds `t` (contiguous, any dtype OnnxType knows) as an initializer; returns its name.
std::string AddTensor(OnnxGraph& graph, const std::string& name, const torch::Tensor& t);

// How 4..7-bit (group-wise) linears compute in the export.
struct LowBitLinearOptions {
  // true: as Shrink's own runtime computes them — int8 DynamicQuantizeMatMul, the weights
  // requantized per channel from the packed codes by nodes ONNX Runtime folds at load (the file
  // keeps the packed bytes). false: MatMulNBits on the packed codes.
  bool int8_kernel = true;
  // MatMulNBits' accuracy_level for 4-bit layers (0 = fp32 activations, exact; 4 = int8).
  int64_t nbits_accuracy_level = 4;
};

// y = x W^T + b for x [..., in]: returns y's name. Errors name the layer and scheme.
absl::StatusOr<std::string> ExportLinear(OnnxGraph& graph, const std::string& x, const StoredWeight& w,
                                         const std::string& name, const LowBitLinearOptions& low_bit = {},
                                         SharedInitializers* shared = nullptr);

// The weight as an fp32 constant [out, in] computed from the stored form by foldable nodes.
// Group-wise weights keep their packed bytes (shared with a tied embedding through `shared`).
absl::StatusOr<std::string> ExportFloatWeight(OnnxGraph& graph, const StoredWeight& w, const std::string& name,
                                              SharedInitializers* shared = nullptr);

// Embedding rows for int64 `ids` [batch, sequence]: [batch, sequence, in]. int8 tables gather
// int8 rows and their scales; group-wise tables gather MatMulNBits-packed rows and unpack only
// those; fp32 / fp16 gather from the table.
absl::StatusOr<std::string> ExportEmbeddingLookup(OnnxGraph& graph, const std::string& ids, const StoredWeight& w,
                                                  const std::string& name, SharedInitializers* shared = nullptr);

}  // namespace shrink::worker
