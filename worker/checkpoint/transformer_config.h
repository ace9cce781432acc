// config.json of the transformer families Shrink loads (torch-free): BERT,
// DistilBERT and RoBERTa encoders, GPT-2 decoders. Field names follow Hugging
// Face; Shrink adds per-layer shapes ("shrink_layers") and per-layer storage
// ("shrink_quantization") so pruned and quantized models describe themselves.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/checkpoint/storage_scheme.h"

namespace shrink::worker {

// Standard deviation of freshly initialised weights (Hugging Face's initializer_range default).
inline constexpr double kTransformerInitStd = 0.02;

enum class TransformerFamily { kBert, kDistilBert, kRoberta, kGpt2 };

// "bert" | "distilbert" | "roberta" | "gpt2".
std::string FamilyName(TransformerFamily family);

// True for the model_type values handled by the transformer code.
bool IsTransformerModelType(const std::string& model_type);

// One block's shape: attention heads kept and FFN width (may differ per layer after pruning).
struct TransformerLayerShape {
  int64_t heads = 0;
  int64_t intermediate = 0;
  bool operator==(const TransformerLayerShape& o) const { return heads == o.heads && intermediate == o.intermediate; }
};

struct TransformerConfig {
  TransformerFamily family = TransformerFamily::kBert;
  int64_t vocab_size = 0;
  int64_t hidden = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;      // heads of an unpruned layer (head_dim = hidden / num_heads)
  int64_t intermediate = 0;   // FFN width of an unpruned layer
  int64_t max_positions = 0;  // rows of the position table (RoBERTa: includes the padding_idx+1 offset)
  int64_t type_vocab_size = 0;  // token types (0: DistilBERT, GPT-2)
  int64_t pad_token_id = 0;
  int64_t num_labels = 2;     // classification head outputs (encoders)
  double layer_norm_eps = 1e-12;
  std::string activation = "gelu";  // gelu (exact), gelu_new (tanh), relu
  std::vector<std::string> label_names;  // id2label in order, when given
  std::vector<TransformerLayerShape> layers;  // per block; filled from the tensors on load
  std::map<std::string, LayerStorage> storage;  // by layer name; absent = fp32
  bool compressed = false;   // produced by a compression policy
  std::string policy_json;   // that policy
  std::string original_json;  // the config.json this came from (unknown keys are kept on save)

  int64_t head_dim() const { return num_heads > 0 ? hidden / num_heads : 0; }
  bool is_decoder() const { return family == TransformerFamily::kGpt2; }
  // RoBERTa numbers positions from padding_idx + 1.
  int64_t position_offset() const { return family == TransformerFamily::kRoberta ? pad_token_id + 1 : 0; }
  // Longest sequence the position table allows.
  int64_t max_sequence() const { return max_positions - position_offset(); }
};

// Parses config.json text; `origin` names the file in errors, which name the field.
// Per-layer shapes ("shrink_layers") are read when present, else every layer is
// num_heads / intermediate wide; the checkpoint's tensors then have the last word.
absl::StatusOr<TransformerConfig> ParseTransformerConfig(const std::string& json, const std::string& origin);

// The config.json text: HF's fields for the family, the original's other keys,
// plus shrink_layers (per-layer heads and FFN width) and shrink_quantization.
std::string TransformerConfigJson(const TransformerConfig& config);

// Presets for `shrink init` / training: bert and roberta base|reference|deep|tiny (RoBERTa's
// position table 2 rows longer), gpt2 small|reference|tiny.
absl::StatusOr<TransformerConfig> TransformerPreset(const std::string& arch, const std::string& preset,
                                                    int64_t vocab_size, int64_t num_labels);

}  // namespace shrink::worker
