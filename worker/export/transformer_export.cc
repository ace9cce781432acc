#include "worker/export/transformer_export.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/export/onnx_weights.h"

namespace shrink::worker {
namespace {

constexpr float kMaskValue = -1e9f;  // TransformerImpl's additive mask
constexpr int64_t kFloat = onnx::TensorProto::FLOAT;
constexpr int64_t kInt64 = onnx::TensorProto::INT64;

class TransformerExporter {
 public:
  TransformerExporter(const TransformerWeights& weights, const TransformerExportOptions& options)
      : w_(weights), c_(weights.config), options_(options), g_(FamilyName(c_.family)) {}

  absl::StatusOr<OnnxGraph> Run() && {
    g_.AddInput(kTokenIdsInput, onnx::TensorProto::INT64, {std::string("batch"), std::string("sequence")});
    g_.AddInput(kAttentionMaskInput, onnx::TensorProto::INT64,
                {std::string("batch"), std::string(c_.is_decoder() ? "total_sequence" : "sequence")});
    if (c_.is_decoder()) {
      // The cache: each layer's keys and values so far, [batch, its heads, past, head_dim].
      for (int64_t i = 0; i < c_.num_layers; ++i) {
        for (const char* part : {"key", "value"}) {
          g_.AddInput(PastName(i, part), onnx::TensorProto::FLOAT,
                      {std::string("batch"), c_.layers[i].heads, std::string("past_sequence"), c_.head_dim()});
        }
      }
    }
    SHRINK_ASSIGN_OR_RETURN(std::string x, Embeddings());
    const std::string bias = AttentionBias();
    for (int64_t i = 0; i < c_.num_layers; ++i) {
      SHRINK_ASSIGN_OR_RETURN(x, Block(x, bias, i));
    }
    std::string logits;
    if (c_.is_decoder()) {
      x = LayerNorm(x, "final_ln");
      SHRINK_ASSIGN_OR_RETURN(logits, LmHead(x));
      g_.NodeWithOutputs("Identity", {logits}, {kLogitsOutput});
      g_.AddOutput(kLogitsOutput, onnx::TensorProto::FLOAT, {std::string("batch"), std::string("sequence"), c_.vocab_size});
      for (int64_t i = 0; i < c_.num_layers; ++i) {
        for (const char* part : {"key", "value"}) {
          g_.AddOutput(PresentName(i, part), onnx::TensorProto::FLOAT,
                       {std::string("batch"), c_.layers[i].heads, std::string("total_sequence"), c_.head_dim()});
        }
      }
    } else {
      SHRINK_ASSIGN_OR_RETURN(logits, ClassifierHead(x));
      g_.NodeWithOutputs("Identity", {logits}, {kLogitsOutput});
      g_.AddOutput(kLogitsOutput, onnx::TensorProto::FLOAT, {std::string("batch"), c_.num_labels});
    }
    return std::move(g_);
  }

 private:
  // The stored weight of a canonical module ("blocks.0.attention.q", "word", ...).
  StoredWeight Stored(const std::string& module) const {
    return StoredWeightOf(module, ModuleStorage(c_, module), w_.tensors, ModuleInputs(w_, module));
  }

  absl::StatusOr<std::string> Linear(const std::string& x, const std::string& module) {
    return ExportLinear(g_, x, Stored(module), module, options_.low_bit, &shared_);
  }

  std::string LayerNorm(const std::string& x, const std::string& module) {
    const std::string gamma = AddTensor(g_, module + ".weight", w_.tensors.at(module + ".weight").to(torch::kFloat32));
    const std::string beta = AddTensor(g_, module + ".bias", w_.tensors.at(module + ".bias").to(torch::kFloat32));
    return g_.Node("LayerNormalization", {x, gamma, beta}, module,
                   {{"axis", int64_t{-1}}, {"epsilon", static_cast<float>(c_.layer_norm_eps)}});
  }

  // [1] slices of the input's shape: batch and sequence as 1-D tensors.
  std::string ShapePart(int64_t index, const std::string& name) {
    if (shape_.empty()) shape_ = g_.Node("Shape", {kTokenIdsInput}, "ids_shape");
    return g_.Node("Slice", {shape_, g_.Int64s(name + "_start", {index}), g_.Int64s(name + "_end", {index + 1})}, name);
  }

  static std::string PastName(int64_t layer, const char* part) { return absl::StrCat("past_key_values.", layer, ".", part); }
  static std::string PresentName(int64_t layer, const char* part) { return absl::StrCat("present.", layer, ".", part); }

  // Scalars: tokens in this call, in the mask (cache + this call), and their difference.
  std::string Length() {
    if (length_.empty()) length_ = g_.Node("Squeeze", {ShapePart(1, "sequence_1d"), g_.Int64s("squeeze_axis", {0})}, "sequence_length");
    return length_;
  }
  std::string TotalLength() {
    if (!c_.is_decoder()) return Length();
    if (total_.empty()) {
      const std::string shape = g_.Node("Shape", {kAttentionMaskInput}, "mask_shape");
      const std::string part = g_.Node("Slice", {shape, g_.Int64s("total_start", {1}), g_.Int64s("total_end", {2})}, "total_1d");
      total_ = g_.Node("Squeeze", {part, g_.Int64s("squeeze_axis_t", {0})}, "total_length");
    }
    return total_;
  }
  std::string PastLength() {
    if (!c_.is_decoder()) return g_.Int64s("zero", {0}, true);
    if (past_.empty()) past_ = g_.Node("Sub", {TotalLength(), Length()}, "past_length");
    return past_;
  }

  std::string Positions() {
    if (c_.family == TransformerFamily::kRoberta) {
      // HF's create_position_ids_from_input_ids: tokens count from padding_idx + 1, padding keeps it.
      const std::string pad = g_.Int64s("pad_token_id", {c_.pad_token_id}, true);
      const std::string is_pad = g_.Node("Equal", {kTokenIdsInput, pad}, "is_pad");
      const std::string not_pad = g_.Node("Cast", {g_.Node("Not", {is_pad}, "not_pad_bool")}, "not_pad", {{"to", kInt64}});
      const std::string count = g_.Node("CumSum", {not_pad, g_.Int64s("sequence_axis", {1}, true)}, "token_count");
      return g_.Node("Add", {g_.Node("Mul", {count, not_pad}, "token_positions"), pad}, "positions");
    }
    // Positions past..total-1: after a cache of `past` tokens, the new ones continue the count.
    const std::string range = g_.Node("Range", {PastLength(), TotalLength(), g_.Int64s("one", {1}, true)}, "position_range");
    return g_.Node("Unsqueeze", {range, g_.Int64s("batch_axis", {0})}, "positions");
  }

  absl::StatusOr<std::string> Embeddings() {
    g_.SetScope("embeddings");
    const StoredWeight word = Stored("word");
    if (c_.is_decoder() && (word.scheme == kSchemeFloat32 || word.scheme == kSchemeFloat16)) {
      // GPT-2's tied head reads the same table: widen it once (folded at load).
      SHRINK_ASSIGN_OR_RETURN(word_table_, ExportFloatWeight(g_, word, "word.weight"));
    }
    std::string x;
    if (!word_table_.empty()) {
      x = g_.Node("Gather", {word_table_, kTokenIdsInput}, "word");
    } else {
      SHRINK_ASSIGN_OR_RETURN(x, ExportEmbeddingLookup(g_, kTokenIdsInput, word, "word", &shared_));
    }
    SHRINK_ASSIGN_OR_RETURN(std::string position, ExportEmbeddingLookup(g_, Positions(), Stored("position"), "position"));
    x = g_.Node("Add", {x, position}, "embeddings_sum");
    if (c_.type_vocab_size > 0) {
      // Every token has type 0 (TransformerImpl adds token_type row 0): ids [1, 1] of 0.
      const int64_t zero = 0;
      const std::string type_ids = g_.AddInitializer("token_type_ids", onnx::TensorProto::INT64, {1, 1}, &zero, sizeof(zero));
      SHRINK_ASSIGN_OR_RETURN(std::string type_row, ExportEmbeddingLookup(g_, type_ids, Stored("token_type"), "token_type"));
      x = g_.Node("Add", {x, type_row}, "embeddings_typed");
    }
    g_.SetScope("");
    if (!c_.is_decoder()) x = LayerNorm(x, "embedding_ln");
    return x;
  }

  // [batch, 1, sequence, sequence]: 0 where a query may attend, -1e9 at padding keys and (GPT-2)
  // at later positions, as TransformerImpl::AttentionBias.
  std::string AttentionBias() {
    const std::string mask = g_.Node("Cast", {kAttentionMaskInput}, "mask_float", {{"to", kFloat}});
    const std::string inverted = g_.Node("Sub", {g_.Floats("one_float", {1.0f}, true), mask}, "mask_inverted");
    const std::string keys = g_.Node("Mul", {inverted, g_.Floats("mask_value", {kMaskValue}, true)}, "key_bias");
    const std::string key_bias = g_.Node("Unsqueeze", {keys, g_.Int64s("bias_axes", {1, 2})}, "key_bias_4d");
    if (c_.is_decoder()) {
      // [batch, 1, sequence, total]: query i (position past + i) sees keys j <= past + i.
      const std::string one = g_.Int64s("one_step", {1}, true);
      const std::string keys_range = g_.Node("Range", {g_.Int64s("zero_k", {0}, true), TotalLength(), one}, "key_positions");
      const std::string query_range = g_.Node("Range", {PastLength(), TotalLength(), one}, "query_positions");
      const std::string rows = g_.Node("Unsqueeze", {query_range, g_.Int64s("row_axis", {1})}, "query_rows");
      const std::string later = g_.Node("Greater", {keys_range, rows}, "causal_later");
      const std::string causal = g_.Node("Mul", {g_.Node("Cast", {later}, "causal_float", {{"to", kFloat}}),
                                                 g_.Floats("causal_value", {kMaskValue}, true)},
                                         "causal_bias");
      return g_.Node("Add", {key_bias, causal}, "attention_bias");
    }
    const std::string batch = ShapePart(0, "batch_1d"), sequence = ShapePart(1, "sequence_1d_bias");
    const std::string full = g_.Node("Concat", {batch, g_.Int64s("one_1d", {1}), sequence, sequence}, "bias_shape",
                                     {{"axis", int64_t{0}}});
    return g_.Node("Expand", {key_bias, full}, "attention_bias");
  }

  absl::StatusOr<std::string> Attention(const std::string& x, const std::string& bias, int64_t i) {
    const std::string p = absl::StrCat("blocks.", i, ".attention.");
    g_.SetScope(absl::StrCat(BlockPrefix(c_), i, ".attention"));
    SHRINK_ASSIGN_OR_RETURN(std::string q, Linear(x, p + "q"));
    SHRINK_ASSIGN_OR_RETURN(std::string k, Linear(x, p + "k"));
    SHRINK_ASSIGN_OR_RETURN(std::string v, Linear(x, p + "v"));
    std::string context;
    if (c_.is_decoder()) {
      context = CachedAttention(q, k, v, bias, i);
    } else {
      context = g_.Node("MultiHeadAttention", {q, k, v, "", "", bias}, p + "mha", {{"num_heads", c_.layers[i].heads}},
                        kMicrosoftDomain);
    }
    SHRINK_ASSIGN_OR_RETURN(std::string out, Linear(context, p + "o"));
    g_.SetScope("");
    return out;
  }

  // softmax(q kᵀ / sqrt(d) + bias) v over the cache and this call's tokens, head by head in
  // [batch, heads, tokens, head_dim]; the extended cache goes out as present.<i>.key / value.
  std::string CachedAttention(const std::string& q, const std::string& k, const std::string& v, const std::string& bias,
                              int64_t i) {
    const std::string p = absl::StrCat("blocks.", i, ".attention.");
    const std::string heads_shape = g_.Int64s(p + "heads_shape", {0, 0, c_.layers[i].heads, c_.head_dim()});
    auto split = [&](const std::string& x, const std::string& name) {
      return g_.Node("Transpose", {g_.Node("Reshape", {x, heads_shape}, name + "_heads")}, name + "_bnsh",
                     {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});
    };
    const std::string present_key = PresentName(i, "key"), present_value = PresentName(i, "value");
    g_.NodeWithOutputs("Concat", {PastName(i, "key"), split(k, p + "k")}, {present_key}, {{"axis", int64_t{2}}});
    g_.NodeWithOutputs("Concat", {PastName(i, "value"), split(v, p + "v")}, {present_value}, {{"axis", int64_t{2}}});
    const std::string keys_t = g_.Node("Transpose", {present_key}, p + "k_t", {{"perm", std::vector<int64_t>{0, 1, 3, 2}}});
    const std::string scores = g_.Node("MatMul", {split(q, p + "q"), keys_t}, p + "scores");
    const float scale = 1.0f / std::sqrt(static_cast<float>(c_.head_dim()));
    const std::string scaled = g_.Node("Mul", {scores, g_.Floats(p + "scale", {scale}, true)}, p + "scaled");
    const std::string probs = g_.Node("Softmax", {g_.Node("Add", {scaled, bias}, p + "biased")}, p + "probs",
                                      {{"axis", int64_t{-1}}});
    const std::string context = g_.Node("MatMul", {probs, present_value}, p + "context_bnsh");
    const std::string merged = g_.Node("Transpose", {context}, p + "context_bsnh", {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});
    return g_.Node("Reshape", {merged, g_.Int64s(p + "merged_shape", {0, 0, c_.layers[i].heads * c_.head_dim()})},
                   p + "context");
  }

  absl::StatusOr<std::string> FeedForward(const std::string& x, int64_t i) {
    const std::string p = absl::StrCat("blocks.", i, ".ffn.");
    g_.SetScope(absl::StrCat(BlockPrefix(c_), i, ".ffn"));
    SHRINK_ASSIGN_OR_RETURN(std::string h, Linear(x, p + "fc1"));
    if (c_.activation == "gelu_new") {
      h = g_.Node("FastGelu", {h}, p + "gelu", {}, kMicrosoftDomain);  // GPT-2's tanh GELU
    } else if (c_.activation == "relu") {
      h = g_.Node("Relu", {h}, p + "relu");
    } else {
      h = g_.Node("Gelu", {h}, p + "gelu", {}, kMicrosoftDomain);  // exact erf GELU
    }
    SHRINK_ASSIGN_OR_RETURN(std::string out, Linear(h, p + "fc2"));
    g_.SetScope("");
    return out;
  }

  absl::StatusOr<std::string> Block(const std::string& x, const std::string& bias, int64_t i) {
    const std::string p = absl::StrCat("blocks.", i, ".");
    if (c_.is_decoder()) {  // pre-LayerNorm
      SHRINK_ASSIGN_OR_RETURN(std::string attention, Attention(LayerNorm(x, p + "ln1"), bias, i));
      const std::string h = g_.Node("Add", {x, attention}, p + "residual1");
      SHRINK_ASSIGN_OR_RETURN(std::string ffn, FeedForward(LayerNorm(h, p + "ln2"), i));
      return g_.Node("Add", {h, ffn}, p + "output");
    }
    SHRINK_ASSIGN_OR_RETURN(std::string attention, Attention(x, bias, i));
    const std::string h = LayerNorm(g_.Node("Add", {x, attention}, p + "residual1"), p + "ln1");
    SHRINK_ASSIGN_OR_RETURN(std::string ffn, FeedForward(h, i));
    return LayerNorm(g_.Node("Add", {h, ffn}, p + "residual2"), p + "ln2");
  }

  absl::StatusOr<std::string> ClassifierHead(const std::string& hidden) {
    g_.SetScope("head");
    const std::string first = g_.Node("Gather", {hidden, g_.Int64s("first_token", {0}, true)}, "first_token_state",
                                      {{"axis", int64_t{1}}});
    SHRINK_ASSIGN_OR_RETURN(std::string pooled, Linear(first, "pool"));
    pooled = g_.Node(c_.family == TransformerFamily::kDistilBert ? "Relu" : "Tanh", {pooled}, "pool_activation");
    return Linear(pooled, "classifier");
  }

  // logits = h · wordᵀ through the tied table in its stored form.
  absl::StatusOr<std::string> LmHead(const std::string& hidden) {
    g_.SetScope("embeddings");  // the tied head is the embedding layer's
    StoredWeight word = Stored("word");
    word.bias = torch::Tensor();
    if (!word_table_.empty()) {
      const std::string table_t = g_.Node("Transpose", {word_table_}, "lm_head.weight_t", {{"perm", std::vector<int64_t>{1, 0}}});
      return g_.Node("MatMul", {hidden, table_t}, "lm_head");
    }
    // int8 rows: DynamicQuantizeMatMul on the same values; group-wise: MatMulNBits on the same codes.
    return ExportLinear(g_, hidden, word, "lm_head", options_.low_bit, &shared_);
  }

  const TransformerWeights& w_;
  const TransformerConfig& c_;
  TransformerExportOptions options_;
  OnnxGraph g_;
  SharedInitializers shared_;  // the word table's stored form, shared by lookups and the tied head
  std::string shape_;
  std::string length_, total_, past_;  // scalars, made once
  std::string word_table_;
};

}  // namespace

absl::StatusOr<OnnxGraph> TransformerToOnnx(const TransformerWeights& weights, const TransformerExportOptions& options) {
  return TransformerExporter(weights, options).Run();
}

}  // namespace shrink::worker
