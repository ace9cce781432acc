// BERT, DistilBERT, RoBERTa and GPT-2 as ONNX graphs (internal: pulls in torch), every
// block with its own head count (com.microsoft MultiHeadAttention, num_heads per node) and
// FFN width, removed blocks absent, each layer in its stored form (onnx_weights.h).
//   inputs:  input_ids, attention_mask  int64 [batch, sequence] (mask: 1 token, 0 padding)
//   outputs: logits  encoders [batch, num_labels]; GPT-2 [batch, sequence, vocab]
// The arithmetic is TransformerImpl's in eval mode: the same embeddings (token type 0), the same
// additive mask (-1e9), exact erf GELU for BERT-family models and tanh GELU for GPT-2.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "worker/checkpoint/transformer_checkpoint.h"
#include "worker/export/onnx_graph.h"
#include "worker/export/onnx_weights.h"

namespace shrink::worker {

inline constexpr char kTokenIdsInput[] = "input_ids";
inline constexpr char kAttentionMaskInput[] = "attention_mask";
inline constexpr char kLogitsOutput[] = "logits";

// Options of a transformer export.
struct TransformerExportOptions {
  LowBitLinearOptions low_bit;  // how 4..7-bit linears compute
};

// The graph of validated weights.
absl::StatusOr<OnnxGraph> TransformerToOnnx(const TransformerWeights& weights,
                                            const TransformerExportOptions& options = {});

}  // namespace shrink::worker
