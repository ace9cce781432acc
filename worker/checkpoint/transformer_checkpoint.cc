#include "worker/checkpoint/transformer_checkpoint.h"

#include <set>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status.h"
#include "worker/checkpoint/cnn_checkpoint.h"
#include "worker/checkpoint/packed_weight.h"
#include "worker/checkpoint/int8_weight.h"
#include "worker/checkpoint/safetensors.h"
#include "worker/checkpoint/safetensors_torch.h"

namespace shrink::worker {
namespace {

enum class ModuleKind { kEmbedding, kLayerNorm, kDense };

// One module of the canonical layout and where HF keeps it.
struct ModuleEntry {
  std::string canonical;  // e.g. "blocks.0.attention.q"
  ModuleKind kind;
  std::string layer;      // policy layer that owns its storage; "" = always fp32 (LayerNorms)
  std::string hf;         // HF module path without the base-model prefix; "" for GPT-2's q/k/v
  bool prefixed = true;   // lives under the base-model prefix ("bert.", "transformer.", ...)
  bool conv1d = false;    // GPT-2 Conv1D: stored [in, out]
};

std::string BasePrefix(TransformerFamily family) {
  switch (family) {
    case TransformerFamily::kBert: return "bert.";
    case TransformerFamily::kDistilBert: return "distilbert.";
    case TransformerFamily::kRoberta: return "roberta.";
    case TransformerFamily::kGpt2: return "transformer.";
  }
  return "";
}

std::string ShapeText(const torch::Tensor& t) { return absl::StrCat("[", absl::StrJoin(t.sizes(), ", "), "]"); }

std::vector<ModuleEntry> Modules(const TransformerConfig& c) {
  std::vector<ModuleEntry> m;
  const auto family = c.family;
  const bool gpt2 = family == TransformerFamily::kGpt2;
  const bool distil = family == TransformerFamily::kDistilBert;
  if (gpt2) {
    m.push_back({"word", ModuleKind::kEmbedding, "embeddings", "wte"});
    m.push_back({"position", ModuleKind::kEmbedding, "embeddings", "wpe"});
  } else {
    m.push_back({"word", ModuleKind::kEmbedding, "embeddings", "embeddings.word_embeddings"});
    m.push_back({"position", ModuleKind::kEmbedding, "embeddings", "embeddings.position_embeddings"});
    if (c.type_vocab_size > 0) {
      m.push_back({"token_type", ModuleKind::kEmbedding, "embeddings", "embeddings.token_type_embeddings"});
    }
    m.push_back({"embedding_ln", ModuleKind::kLayerNorm, "", "embeddings.LayerNorm"});
  }
  const std::string block_prefix = BlockPrefix(c);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string b = absl::StrCat("blocks.", i, ".");
    const std::string attention = absl::StrCat(block_prefix, i, ".attention");
    const std::string ffn = absl::StrCat(block_prefix, i, ".ffn");
    if (gpt2) {
      const std::string h = absl::StrCat("h.", i, ".");
      m.push_back({b + "ln1", ModuleKind::kLayerNorm, "", h + "ln_1"});
      for (const char* part : {"q", "k", "v"}) {
        m.push_back({b + "attention." + part, ModuleKind::kDense, attention, "", true, true});
      }
      m.push_back({b + "attention.o", ModuleKind::kDense, attention, h + "attn.c_proj", true, true});
      m.push_back({b + "ln2", ModuleKind::kLayerNorm, "", h + "ln_2"});
      m.push_back({b + "ffn.fc1", ModuleKind::kDense, ffn, h + "mlp.c_fc", true, true});
      m.push_back({b + "ffn.fc2", ModuleKind::kDense, ffn, h + "mlp.c_proj", true, true});
    } else if (distil) {
      const std::string l = absl::StrCat("transformer.layer.", i, ".");
      m.push_back({b + "attention.q", ModuleKind::kDense, attention, l + "attention.q_lin"});
      m.push_back({b + "attention.k", ModuleKind::kDense, attention, l + "attention.k_lin"});
      m.push_back({b + "attention.v", ModuleKind::kDense, attention, l + "attention.v_lin"});
      m.push_back({b + "attention.o", ModuleKind::kDense, attention, l + "attention.out_lin"});
      m.push_back({b + "ln1", ModuleKind::kLayerNorm, "", l + "sa_layer_norm"});
      m.push_back({b + "ffn.fc1", ModuleKind::kDense, ffn, l + "ffn.lin1"});
      m.push_back({b + "ffn.fc2", ModuleKind::kDense, ffn, l + "ffn.lin2"});
      m.push_back({b + "ln2", ModuleKind::kLayerNorm, "", l + "output_layer_norm"});
    } else {
      const std::string l = absl::StrCat("encoder.layer.", i, ".");
      m.push_back({b + "attention.q", ModuleKind::kDense, attention, l + "attention.self.query"});
      m.push_back({b + "attention.k", ModuleKind::kDense, attention, l + "attention.self.key"});
      m.push_back({b + "attention.v", ModuleKind::kDense, attention, l + "attention.self.value"});
      m.push_back({b + "attention.o", ModuleKind::kDense, attention, l + "attention.output.dense"});
      m.push_back({b + "ln1", ModuleKind::kLayerNorm, "", l + "attention.output.LayerNorm"});
      m.push_back({b + "ffn.fc1", ModuleKind::kDense, ffn, l + "intermediate.dense"});
      m.push_back({b + "ffn.fc2", ModuleKind::kDense, ffn, l + "output.dense"});
      m.push_back({b + "ln2", ModuleKind::kLayerNorm, "", l + "output.LayerNorm"});
    }
  }
  if (gpt2) {
    m.push_back({"final_ln", ModuleKind::kLayerNorm, "", "ln_f"});
  } else if (distil) {
    m.push_back({"pool", ModuleKind::kDense, "head", "pre_classifier", false});
    m.push_back({"classifier", ModuleKind::kDense, "head", "classifier", false});
  } else if (family == TransformerFamily::kRoberta) {
    m.push_back({"pool", ModuleKind::kDense, "head", "classifier.dense", false});
    m.push_back({"classifier", ModuleKind::kDense, "head", "classifier.out_proj", false});
  } else {
    m.push_back({"pool", ModuleKind::kDense, "head", "pooler.dense", true});
    m.push_back({"classifier", ModuleKind::kDense, "head", "classifier", false});
  }
  return m;
}

bool IsInt8(const LayerStorage& s) { return s.bits == 8; }
bool IsGroupwise(const LayerStorage& s) { return s.scheme == kSchemeGroupwise; }

// The suffixes of a group-wise packed weight's three tensors.
const char* const kPackedSuffixes[] = {".weight_packed", ".weight_scales", ".weight_zeros"};

// HF checkpoints that ship pretraining heads or cached buffers carry tensors we do not use.
bool Ignorable(const std::string& name, const TransformerConfig& c, const std::string& prefix) {
  for (const char* head : {"cls.", "lm_head.", "vocab_transform.", "vocab_layer_norm.", "vocab_projector."}) {
    if (absl::StartsWith(name, head)) return true;
  }
  if (absl::EndsWith(name, ".attn.bias") || absl::EndsWith(name, ".attn.masked_bias") ||
      absl::EndsWith(name, "position_ids")) {
    return true;
  }
  return c.family == TransformerFamily::kRoberta && absl::StartsWith(name, prefix + "pooler.");
}

absl::Status CheckScheme(const std::string& layer, const LayerStorage& storage, bool embedding,
                         const std::string& origin) {
  absl::Status s = CheckStorage(storage, embedding ? WeightRole::kEmbedding : WeightRole::kLinear);
  if (s.ok()) return s;
  return absl::InvalidArgumentError(absl::StrCat(origin, ": shrink_quantization.", layer, ": ", s.message()));
}

}  // namespace

const LayerStorage& LayerStorageOf(const TransformerConfig& c, const std::string& layer) {
  static const LayerStorage kFp32;
  auto it = c.storage.find(layer);
  return layer.empty() || it == c.storage.end() ? kFp32 : it->second;
}

bool TransformerWeights::IsUncompressed() const {
  if (config.compressed) return false;
  for (const auto& [layer, s] : config.storage) {
    if (s.scheme != kSchemeFloat32) return false;
  }
  return true;
}

const TransformerLayerGroup* FindLayerGroup(const std::vector<TransformerLayerGroup>& groups, const std::string& name) {
  for (const auto& group : groups) {
    if (group.name == name) return &group;
  }
  return nullptr;
}

std::string BlockPrefix(const TransformerConfig& config) {
  switch (config.family) {
    case TransformerFamily::kDistilBert: return "transformer.layer.";
    case TransformerFamily::kGpt2: return "h.";
    default: return "encoder.layer.";
  }
}

std::vector<TransformerLayerGroup> TransformerLayerGroups(const TransformerConfig& config) {
  std::vector<TransformerLayerGroup> groups;
  TransformerLayerGroup embeddings{"embeddings", "embedding", -1, {"word", "position"}};
  if (config.type_vocab_size > 0) embeddings.modules.push_back("token_type");
  groups.push_back(embeddings);
  const std::string prefix = BlockPrefix(config);
  for (int64_t i = 0; i < config.num_layers; ++i) {
    const std::string b = absl::StrCat("blocks.", i, ".");
    groups.push_back({absl::StrCat(prefix, i, ".attention"), "attention", static_cast<int>(i),
                      {b + "attention.q", b + "attention.k", b + "attention.v", b + "attention.o"}});
    groups.push_back({absl::StrCat(prefix, i, ".ffn"), "ffn", static_cast<int>(i), {b + "ffn.fc1", b + "ffn.fc2"}});
  }
  if (!config.is_decoder()) groups.push_back({"head", "head", -1, {"pool", "classifier"}});
  return groups;
}

absl::Status ValidateTransformerWeights(TransformerWeights& w, const std::string& origin) {
  TransformerConfig& c = w.config;
  auto fail = [&](auto&&... parts) { return absl::InvalidArgumentError(absl::StrCat(origin, ": ", parts...)); };
  for (const auto& [layer, storage] : c.storage) {
    bool known = false, embedding = false;
    for (const auto& group : TransformerLayerGroups(c)) {
      if (group.name == layer) {
        known = true;
        embedding = group.kind == "embedding";
      }
    }
    if (!known) return fail("shrink_quantization names unknown layer ", layer);
    SHRINK_RETURN_IF_ERROR(CheckScheme(layer, storage, embedding, origin));
  }
  std::set<std::string> expected;
  // Checks one tensor: present, dtype, shape (-1 = any), nothing empty.
  auto check = [&](const std::string& name, torch::ScalarType type, std::vector<int64_t> shape) -> absl::Status {
    expected.insert(name);
    auto it = w.tensors.find(name);
    if (it == w.tensors.end()) return fail("missing tensor ", name);
    const torch::Tensor& t = it->second;
    if (t.scalar_type() != type) {
      return fail("tensor ", name, " is ", c10::toString(t.scalar_type()), ", expected ", c10::toString(type));
    }
    bool match = t.dim() == static_cast<int64_t>(shape.size());
    for (size_t i = 0; match && i < shape.size(); ++i) match = shape[i] < 0 || t.size(i) == shape[i];
    if (!match) {
      std::vector<std::string> want;
      for (int64_t d : shape) want.push_back(d < 0 ? "?" : std::to_string(d));
      return fail("tensor ", name, " has shape ", ShapeText(t), ", expected [", absl::StrJoin(want, ", "), "]");
    }
    if (t.numel() == 0) return fail("tensor ", name, " is empty ", ShapeText(t));
    return absl::OkStatus();
  };
  auto weight_type = [&](const std::string& layer) {
    const LayerStorage& s = LayerStorageOf(c, layer);
    if (IsInt8(s)) return torch::kInt8;
    return s.scheme == kSchemeFloat16 ? torch::kFloat16 : torch::kFloat32;
  };
  // A quantizable weight [rows, cols] (+ its scale when int8, or its packed tensors).
  auto check_weight = [&](const std::string& module, const std::string& layer, int64_t rows,
                          int64_t cols) -> absl::Status {
    const LayerStorage& s = LayerStorageOf(c, layer);
    if (IsGroupwise(s)) {
      SHRINK_RETURN_IF_ERROR(check(module + ".weight_packed", torch::kUInt8, {PackedCodeBytes(rows * cols, s.bits)}));
      SHRINK_RETURN_IF_ERROR(check(module + ".weight_scales", torch::kFloat16, {rows, NumGroups(cols, s.group_size)}));
      SHRINK_RETURN_IF_ERROR(check(module + ".weight_zeros", torch::kFloat16, {rows, NumGroups(cols, s.group_size)}));
      PackedTensors t{w.tensors.at(module + ".weight_packed"), w.tensors.at(module + ".weight_scales"),
                      w.tensors.at(module + ".weight_zeros")};
      auto packed = FromTensors(t, rows, cols, s.bits, s.group_size, module);
      if (!packed.ok()) return fail(packed.status().message());
      return absl::OkStatus();
    }
    SHRINK_RETURN_IF_ERROR(check(module + ".weight", weight_type(layer), {rows, cols}));
    if (!IsInt8(s)) return absl::OkStatus();
    const int64_t out = w.tensors.at(module + ".weight").size(0);
    const std::string scale = module + ".weight_scale";
    SHRINK_RETURN_IF_ERROR(check(scale, torch::kFloat32, {s.scheme == kSchemeInt8DynamicPerTensor ? 1 : out}));
    const torch::Tensor& t = w.tensors.at(scale);
    if (!t.isfinite().all().item<bool>() || !(t > 0).all().item<bool>()) {
      return fail("tensor ", scale, " has a scale that is not finite and positive");
    }
    return absl::OkStatus();
  };
  auto dims = [&](const std::string& name, int64_t d) {
    auto it = w.tensors.find(name);
    if (it == w.tensors.end() && d == 0 && absl::EndsWith(name, ".weight")) it = w.tensors.find(name + "_scales");
    return it == w.tensors.end() || it->second.dim() <= d ? int64_t{-1} : it->second.size(d);
  };
  // The embedding table fixes vocab and hidden; config.json must agree with it (packed tables
  // fix only the vocabulary).
  const bool packed_table = w.tensors.count("word.weight") == 0 && w.tensors.count("word.weight_scales") > 0;
  const int64_t vocab = dims("word.weight", 0), hidden = packed_table ? c.hidden : dims("word.weight", 1);
  if (vocab < 0 || hidden < 0) return fail("missing or malformed tensor word.weight (the word embeddings)");
  if (vocab != c.vocab_size) return fail("config vocab_size is ", c.vocab_size, " but the word embeddings have ", vocab, " rows");
  if (hidden != c.hidden) return fail("config hidden size is ", c.hidden, " but the word embeddings are ", hidden, " wide");
  SHRINK_RETURN_IF_ERROR(check_weight("word", "embeddings", c.vocab_size, c.hidden));
  SHRINK_RETURN_IF_ERROR(check_weight("position", "embeddings", c.max_positions, c.hidden));
  if (c.type_vocab_size > 0) SHRINK_RETURN_IF_ERROR(check_weight("token_type", "embeddings", c.type_vocab_size, c.hidden));
  auto check_ln = [&](const std::string& module) -> absl::Status {
    SHRINK_RETURN_IF_ERROR(check(module + ".weight", torch::kFloat32, {c.hidden}));
    return check(module + ".bias", torch::kFloat32, {c.hidden});
  };
  if (!c.is_decoder()) SHRINK_RETURN_IF_ERROR(check_ln("embedding_ln"));
  const std::string prefix = BlockPrefix(c);
  const int64_t head_dim = c.head_dim();
  c.layers.resize(c.num_layers);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string b = absl::StrCat("blocks.", i, ".");
    const std::string attention = absl::StrCat(prefix, i, ".attention"), ffn = absl::StrCat(prefix, i, ".ffn");
    const int64_t inner = dims(b + "attention.q.weight", 0);
    if (inner < 0) return fail("missing tensor ", b, "attention.q.weight (layer ", i, " query)");
    if (inner % head_dim != 0) {
      return fail("tensor ", b, "attention.q.weight has ", inner, " rows, not a multiple of the head size ", head_dim);
    }
    const int64_t inter = dims(b + "ffn.fc1.weight", 0);
    if (inter < 0) return fail("missing tensor ", b, "ffn.fc1.weight (layer ", i, " FFN input)");
    c.layers[i] = {inner / head_dim, inter};
    for (const char* part : {"q", "k", "v"}) {
      SHRINK_RETURN_IF_ERROR(check_weight(b + "attention." + part, attention, inner, c.hidden));
      SHRINK_RETURN_IF_ERROR(check(b + "attention." + part + ".bias", torch::kFloat32, {inner}));
    }
    SHRINK_RETURN_IF_ERROR(check_weight(b + "attention.o", attention, c.hidden, inner));
    SHRINK_RETURN_IF_ERROR(check(b + "attention.o.bias", torch::kFloat32, {c.hidden}));
    SHRINK_RETURN_IF_ERROR(check_weight(b + "ffn.fc1", ffn, inter, c.hidden));
    SHRINK_RETURN_IF_ERROR(check(b + "ffn.fc1.bias", torch::kFloat32, {inter}));
    SHRINK_RETURN_IF_ERROR(check_weight(b + "ffn.fc2", ffn, c.hidden, inter));
    SHRINK_RETURN_IF_ERROR(check(b + "ffn.fc2.bias", torch::kFloat32, {c.hidden}));
    SHRINK_RETURN_IF_ERROR(check_ln(b + "ln1"));
    SHRINK_RETURN_IF_ERROR(check_ln(b + "ln2"));
  }
  if (c.is_decoder()) {
    SHRINK_RETURN_IF_ERROR(check_ln("final_ln"));
  } else {
    SHRINK_RETURN_IF_ERROR(check_weight("pool", "head", c.hidden, c.hidden));
    SHRINK_RETURN_IF_ERROR(check("pool.bias", torch::kFloat32, {c.hidden}));
    const int64_t labels = dims("classifier.weight", 0);
    if (labels >= 0 && labels != c.num_labels) {
      return fail("config has ", c.num_labels, " labels (num_labels / id2label) but the classifier has ", labels, " rows");
    }
    SHRINK_RETURN_IF_ERROR(check_weight("classifier", "head", c.num_labels, c.hidden));
    SHRINK_RETURN_IF_ERROR(check("classifier.bias", torch::kFloat32, {c.num_labels}));
  }
  for (const auto& [name, tensor] : w.tensors) {
    if (expected.count(name) == 0) return fail("unexpected tensor ", name, " (not part of this ", FamilyName(c.family), " model)");
  }
  return absl::OkStatus();
}

absl::StatusOr<TransformerWeights> ReadTransformerCheckpoint(const std::string& dir) {
  const std::string config_path = absl::StrCat(dir, "/", kModelConfigFile);
  const std::string weights_path = absl::StrCat(dir, "/", kModelWeightsFile);
  if (!PathExists(config_path)) return absl::InvalidArgumentError(absl::StrCat("model directory ", dir, " has no ", kModelConfigFile));
  SHRINK_ASSIGN_OR_RETURN(std::string text, ReadFile(config_path));
  TransformerWeights w;
  SHRINK_ASSIGN_OR_RETURN(w.config, ParseTransformerConfig(text, config_path));
  const std::vector<TransformerLayerShape> recorded = w.config.layers;
  const bool has_record = absl::StrContains(text, "\"shrink_layers\"");
  TransformerConfig& c = w.config;
  if (!PathExists(weights_path)) {
    return absl::InvalidArgumentError(absl::StrCat("model directory ", dir, " has no ", kModelWeightsFile));
  }
  SHRINK_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(weights_path));
  // Base models (BertModel, GPT2Model) are saved without the prefix; task models with it.
  const std::vector<ModuleEntry> modules = Modules(c);
  const std::string standard = BasePrefix(c.family);
  // Packed (4..7-bit) word embeddings are stored as ".weight_packed".
  const std::string probe =
      modules[0].hf + (LayerStorageOf(c, "embeddings").scheme == kSchemeGroupwise ? ".weight_packed" : ".weight");
  std::string prefix;
  if (file->Find(standard + probe) != nullptr) {
    prefix = standard;
  } else if (file->Find(probe) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(weights_path, ": no word embeddings: neither ", standard, probe,
                                                   " nor ", probe, " is in the file (is model_type \"",
                                                   FamilyName(c.family), "\" right?)"));
  }
  std::set<std::string> used;
  auto get = [&](const std::string& name) -> absl::StatusOr<torch::Tensor> {
    const SafetensorsTensorView* view = file->Find(name);
    if (view == nullptr) return absl::NotFoundError(name);
    used.insert(name);
    auto tensor = ToTorch(*view);
    if (!tensor.ok()) return absl::InvalidArgumentError(absl::StrCat(weights_path, ": tensor ", name, ": ", tensor.status().message()));
    return *tensor;
  };
  auto missing = [&](const std::string& name) {
    return absl::InvalidArgumentError(absl::StrCat(weights_path, ": missing tensor ", name));
  };
  bool head_initialised = false;
  for (const ModuleEntry& m : modules) {
    const LayerStorage& storage = LayerStorageOf(c, m.layer);
    const bool uncompressed_weight = storage.scheme == kSchemeFloat32;
    const std::string base = m.prefixed ? prefix : "";
    // Uncompressed weights stored in F16/BF16 (common for downloads) are widened to fp32, as HF does.
    auto widen = [&](torch::Tensor t, bool is_weight) {
      if ((uncompressed_weight || !is_weight) && t.is_floating_point()) return t.to(torch::kFloat32);
      return t;
    };
    if (m.kind == ModuleKind::kLayerNorm) {
      for (const auto& [suffix, alias] : {std::pair<std::string, std::string>{"weight", "gamma"}, {"bias", "beta"}}) {
        auto t = get(absl::StrCat(base, m.hf, ".", suffix));
        if (!t.ok() && t.status().code() == absl::StatusCode::kNotFound) t = get(absl::StrCat(base, m.hf, ".", alias));
        if (!t.ok()) {
          return t.status().code() == absl::StatusCode::kNotFound ? missing(absl::StrCat(base, m.hf, ".", suffix)) : t.status();
        }
        w.tensors[absl::StrCat(m.canonical, ".", suffix)] = widen(*t, false);
      }
      continue;
    }
    if (IsGroupwise(storage) && !m.hf.empty()) {
      // Packed codes and their scales / zero points travel as stored (no Conv1D transposition).
      bool all = true;
      for (const char* suffix : kPackedSuffixes) {
        auto t = get(absl::StrCat(base, m.hf, suffix));
        if (!t.ok()) {
          if (t.status().code() != absl::StatusCode::kNotFound) return t.status();
          all = false;
          break;
        }
        w.tensors[m.canonical + suffix] = *t;
      }
      if (!all) {
        if (m.layer == "head") {
          head_initialised = true;
          continue;
        }
        return missing(absl::StrCat(base, m.hf, ".weight_packed (and _scales, _zeros)"));
      }
      if (m.kind == ModuleKind::kDense) {
        auto bias = get(absl::StrCat(base, m.hf, ".bias"));
        if (!bias.ok()) return missing(absl::StrCat(base, m.hf, ".bias"));
        w.tensors[m.canonical + ".bias"] = widen(*bias, false);
      }
      continue;
    }
    if (m.kind == ModuleKind::kEmbedding) {
      const std::string name = absl::StrCat(base, m.hf, ".weight");
      auto t = get(name);
      if (!t.ok()) return t.status().code() == absl::StatusCode::kNotFound ? missing(name) : t.status();
      w.tensors[m.canonical + ".weight"] = widen(*t, true);
      if (IsInt8(storage)) {
        auto scale = get(absl::StrCat(base, m.hf, ".weight_scale"));
        if (!scale.ok()) return missing(absl::StrCat(base, m.hf, ".weight_scale"));
        w.tensors[m.canonical + ".weight_scale"] = *scale;
      }
      continue;
    }
    // Dense. GPT-2's q, k, v come from one fused c_attn [in, 3 * inner].
    const bool fused = m.hf.empty();
    if (fused && !absl::EndsWith(m.canonical, ".q")) continue;  // q's pass loads all three
    const std::string block = m.canonical.substr(0, m.canonical.rfind('.') + 1);  // "blocks.N.attention."
    const std::string hf = fused ? absl::StrCat(base, "h.", block.substr(7, block.find('.', 7) - 7), ".attn.c_attn")
                                 : base + m.hf;
    if (fused && IsGroupwise(storage)) {
      // One packed [3 * inner, hidden] matrix: split by rows into q, k, v.
      PackedTensors stored;
      for (const auto& [suffix, slot] : {std::pair<const char*, torch::Tensor*>{".weight_packed", &stored.packed},
                                         {".weight_scales", &stored.scales},
                                         {".weight_zeros", &stored.zeros}}) {
        auto t = get(hf + suffix);
        if (!t.ok()) return t.status().code() == absl::StatusCode::kNotFound ? missing(hf + suffix) : t.status();
        *slot = *t;
      }
      auto bias = get(hf + ".bias");
      if (!bias.ok()) return bias.status().code() == absl::StatusCode::kNotFound ? missing(hf + ".bias") : bias.status();
      const int64_t rows = stored.scales.dim() == 2 ? stored.scales.size(0) : 0;
      if (rows % 3 != 0 || rows == 0 || bias->dim() != 1 || bias->size(0) != rows) {
        return absl::InvalidArgumentError(absl::StrCat(weights_path, ": tensor ", hf, ".weight_scales ",
                                                       ShapeText(stored.scales), " / bias ", ShapeText(*bias),
                                                       " do not split into q, k, v"));
      }
      auto packed = FromTensors(stored, rows, c.hidden, storage.bits, storage.group_size, absl::StrCat(weights_path, ": ", hf));
      if (!packed.ok()) return packed.status();
      SHRINK_ASSIGN_OR_RETURN(std::vector<PackedGroupWeight> parts, SplitRows(*packed, 3));
      auto bs = widen(*bias, false).chunk(3, 0);
      const char* names[] = {"q", "k", "v"};
      for (int p = 0; p < 3; ++p) {
        PackedTensors t = ToTensors(parts[p]);
        w.tensors[block + names[p] + ".weight_packed"] = t.packed;
        w.tensors[block + names[p] + ".weight_scales"] = t.scales;
        w.tensors[block + names[p] + ".weight_zeros"] = t.zeros;
        w.tensors[block + names[p] + ".bias"] = bs[p].contiguous();
      }
      continue;
    }
    auto weight = get(hf + ".weight");
    if (!weight.ok()) {
      const bool head = m.layer == "head";
      if (head && weight.status().code() == absl::StatusCode::kNotFound) {
        head_initialised = true;  // a base model: the head starts random, as in HF
        continue;
      }
      return weight.status().code() == absl::StatusCode::kNotFound ? missing(hf + ".weight") : weight.status();
    }
    auto bias = get(hf + ".bias");
    if (!bias.ok()) return bias.status().code() == absl::StatusCode::kNotFound ? missing(hf + ".bias") : bias.status();
    torch::Tensor wt = widen(*weight, true), bt = widen(*bias, false);
    if (m.conv1d) {
      if (wt.dim() != 2) {
        return absl::InvalidArgumentError(absl::StrCat(weights_path, ": tensor ", hf, ".weight has shape ",
                                                       ShapeText(wt), ", expected a 2-d Conv1D weight [in, out]"));
      }
      wt = wt.t().contiguous();
    }
    torch::Tensor scale;
    if (IsInt8(storage)) {
      auto s = get(hf + ".weight_scale");
      if (!s.ok()) return missing(hf + ".weight_scale");
      scale = *s;
    }
    if (fused) {
      if (wt.size(0) % 3 != 0 || bt.dim() != 1 || bt.size(0) != wt.size(0) ||
          (scale.defined() && (scale.dim() != 1 || scale.size(0) % 3 != 0))) {
        return absl::InvalidArgumentError(absl::StrCat(weights_path, ": tensor ", hf, ".weight ", ShapeText(*weight),
                                                       " / bias ", ShapeText(bt), " do not split into q, k, v"));
      }
      auto ws = wt.chunk(3, 0);
      auto bs = bt.chunk(3, 0);
      std::vector<torch::Tensor> ss = scale.defined() ? scale.chunk(3, 0) : std::vector<torch::Tensor>();
      const char* parts[] = {"q", "k", "v"};
      for (int p = 0; p < 3; ++p) {
        w.tensors[block + parts[p] + ".weight"] = ws[p].contiguous();
        w.tensors[block + parts[p] + ".bias"] = bs[p].contiguous();
        if (scale.defined()) w.tensors[block + parts[p] + ".weight_scale"] = ss[p].contiguous();
      }
      continue;
    }
    w.tensors[m.canonical + ".weight"] = wt;
    w.tensors[m.canonical + ".bias"] = bt;
    if (scale.defined()) w.tensors[m.canonical + ".weight_scale"] = scale;
  }
  for (const auto& [name, view] : file->tensors()) {
    if (used.count(name) == 0 && !Ignorable(name, c, prefix)) {
      return absl::InvalidArgumentError(absl::StrCat(weights_path, ": unexpected tensor ", name, " (not part of a ",
                                                     FamilyName(c.family), " model as Shrink maps it)"));
    }
  }
  if (head_initialised) {
    // Random weights from a fixed seed so loads are reproducible: HF's normal(0, initializer_range)
    // weights and zero biases, as the module initialises a fresh head.
    torch::manual_seed(0);
    const std::map<std::string, std::vector<int64_t>> shapes = {{"pool", {c.hidden, c.hidden}},
                                                                {"classifier", {c.num_labels, c.hidden}}};
    for (const auto& [module, shape] : shapes) {
      if (w.tensors.count(module + ".weight") == 0) w.tensors[module + ".weight"] = torch::randn(shape) * kTransformerInitStd;
      if (w.tensors.count(module + ".bias") == 0) w.tensors[module + ".bias"] = torch::zeros({shape[0]});
    }
    c.storage.erase("head");
    LogLine("INFO", absl::StrCat(dir, ": no classification head in the checkpoint; initialised one randomly (", c.num_labels,
                         " labels)"));
  }
  SHRINK_RETURN_IF_ERROR(ValidateTransformerWeights(w, weights_path));
  if (has_record && recorded != c.layers) {
    for (size_t i = 0; i < recorded.size() && i < c.layers.size(); ++i) {
      if (recorded[i] == c.layers[i]) continue;
      return absl::InvalidArgumentError(absl::StrCat(config_path, ": shrink_layers[", i, "] records ", recorded[i].heads,
                                                     " heads and FFN width ", recorded[i].intermediate, " but ",
                                                     kModelWeightsFile, " holds ", c.layers[i].heads, " heads and ",
                                                     c.layers[i].intermediate));
    }
  }
  return w;
}

namespace {

// The tensors under HF's names; without the classification head (pooler, classifier) when
// !with_head, as a pretraining model has none.
absl::StatusOr<std::map<std::string, SafetensorsTensor>> HfTensors(const TransformerWeights& w, bool with_head) {
  const TransformerConfig& c = w.config;
  const std::string prefix = BasePrefix(c.family);
  std::map<std::string, SafetensorsTensor> out;
  auto put = [&](const std::string& name, const torch::Tensor& t) -> absl::Status {
    SHRINK_ASSIGN_OR_RETURN(out[name], FromTorch(t));
    return absl::OkStatus();
  };
  auto at = [&](const std::string& name) -> absl::StatusOr<torch::Tensor> {
    auto it = w.tensors.find(name);
    if (it == w.tensors.end()) return absl::InvalidArgumentError(absl::StrCat("missing tensor ", name));
    return it->second;
  };
  for (const ModuleEntry& m : Modules(c)) {
    if (!with_head && m.layer == "head") continue;
    const std::string base = m.prefixed ? prefix : "";
    std::vector<std::string> suffixes = m.kind == ModuleKind::kEmbedding ? std::vector<std::string>{".weight", ".weight_scale"}
                                                                          : std::vector<std::string>{".weight", ".bias", ".weight_scale"};
    suffixes.insert(suffixes.end(), std::begin(kPackedSuffixes), std::end(kPackedSuffixes));
    if (m.hf.empty()) {  // GPT-2 q/k/v: written once, fused, on q
      if (!absl::EndsWith(m.canonical, ".q")) continue;
      const std::string block = m.canonical.substr(0, m.canonical.size() - 1);
      const std::string index = block.substr(7, block.find('.', 7) - 7);
      const std::string hf = absl::StrCat(base, "h.", index, ".attn.c_attn");
      for (const std::string& suffix : suffixes) {
        if (w.tensors.count(block + "q" + suffix) == 0) continue;
        if (suffix == ".weight_packed") {
          // Concatenating the code streams row-wise = packing the fused [3 * inner, hidden] matrix.
          const LayerStorage& s = LayerStorageOf(c, m.layer);
          std::vector<PackedGroupWeight> packed;
          for (const char* p : {"q", "k", "v"}) {
            PackedTensors t{w.tensors.at(block + p + ".weight_packed"), w.tensors.at(block + p + ".weight_scales"),
                            w.tensors.at(block + p + ".weight_zeros")};
            SHRINK_ASSIGN_OR_RETURN(PackedGroupWeight one,
                                    FromTensors(t, t.scales.size(0), c.hidden, s.bits, s.group_size, block + p));
            packed.push_back(std::move(one));
          }
          SHRINK_ASSIGN_OR_RETURN(PackedGroupWeight fused, ConcatRows(packed));
          SHRINK_RETURN_IF_ERROR(put(hf + suffix, ToTensors(fused).packed));
          continue;
        }
        std::vector<torch::Tensor> parts;
        for (const char* p : {"q", "k", "v"}) {
          SHRINK_ASSIGN_OR_RETURN(torch::Tensor t, at(block + p + suffix));
          parts.push_back(t);
        }
        torch::Tensor fused = torch::cat(parts, 0);
        if (suffix == ".weight") fused = fused.t();
        SHRINK_RETURN_IF_ERROR(put(hf + suffix, fused.contiguous()));
      }
      continue;
    }
    for (const std::string& suffix : suffixes) {
      auto it = w.tensors.find(m.canonical + suffix);
      if (it == w.tensors.end()) {
        const bool packed = w.tensors.count(m.canonical + ".weight_packed") > 0;
        if (suffix != ".weight" && suffix != ".bias") continue;
        if (suffix == ".weight" && packed) continue;
        return absl::InvalidArgumentError(absl::StrCat("missing tensor ", m.canonical, suffix));
      }
      torch::Tensor t = it->second;
      if (m.conv1d && suffix == ".weight") t = t.t().contiguous();
      SHRINK_RETURN_IF_ERROR(put(base + m.hf + suffix, t));
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> TransformerSafetensorsBytes(const TransformerWeights& w) {
  SHRINK_ASSIGN_OR_RETURN(auto tensors, HfTensors(w, true));
  return SerializeSafetensors(tensors, {{"format", "pt"}});
}

absl::Status WritePretrainingCheckpoint(const TransformerWeights& weights,
                                        const std::map<std::string, torch::Tensor>& head, const std::string& dir) {
  SHRINK_ASSIGN_OR_RETURN(auto tensors, HfTensors(weights, false));
  for (const auto& [name, tensor] : head) {
    if (tensors.count(name) > 0) return absl::InvalidArgumentError(absl::StrCat("head tensor ", name, " is a base-model name"));
    SHRINK_ASSIGN_OR_RETURN(tensors[name], FromTorch(tensor));
  }
  SHRINK_ASSIGN_OR_RETURN(std::string bytes, SerializeSafetensors(tensors, {{"format", "pt"}}));
  auto config = nlohmann::ordered_json::parse(TransformerConfigJson(weights.config));
  switch (weights.config.family) {
    case TransformerFamily::kBert: config["architectures"] = {"BertForMaskedLM"}; break;
    case TransformerFamily::kRoberta: config["architectures"] = {"RobertaForMaskedLM"}; break;
    case TransformerFamily::kDistilBert: config["architectures"] = {"DistilBertForMaskedLM"}; break;
    case TransformerFamily::kGpt2: config["architectures"] = {"GPT2LMHeadModel"}; break;
  }
  SHRINK_RETURN_IF_ERROR(MakeDirs(dir));
  SHRINK_RETURN_IF_ERROR(WriteFileAtomic(absl::StrCat(dir, "/", kModelWeightsFile), bytes));
  return WriteFileAtomic(absl::StrCat(dir, "/", kModelConfigFile), config.dump(2) + "\n");
}

absl::Status WriteTransformerCheckpoint(const TransformerWeights& weights, const std::string& dir) {
  SHRINK_RETURN_IF_ERROR(MakeDirs(dir));
  SHRINK_ASSIGN_OR_RETURN(std::string bytes, TransformerSafetensorsBytes(weights));
  SHRINK_RETURN_IF_ERROR(WriteFileAtomic(absl::StrCat(dir, "/", kModelWeightsFile), bytes));
  return WriteFileAtomic(absl::StrCat(dir, "/", kModelConfigFile), TransformerConfigJson(weights.config));
}

const LayerStorage& ModuleStorage(const TransformerConfig& config, const std::string& module) {
  for (const auto& group : TransformerLayerGroups(config)) {
    for (const auto& m : group.modules) {
      if (m == module) return LayerStorageOf(config, group.name);
    }
  }
  return LayerStorageOf(config, "");
}

int64_t ModuleInputs(const TransformerWeights& weights, const std::string& module) {
  auto rows = [&](const std::string& producer) -> int64_t {
    for (const char* suffix : {".weight", ".weight_scales"}) {
      auto it = weights.tensors.find(producer + suffix);
      if (it != weights.tensors.end() && it->second.dim() >= 1) return it->second.size(0);
    }
    return -1;
  };
  auto ends = [&](const std::string& tail) { return absl::EndsWith(module, tail); };
  if (ends("attention.o")) return rows(module.substr(0, module.size() - 1) + "q");
  if (ends("ffn.fc2")) return rows(module.substr(0, module.size() - 3) + "fc1");
  return weights.config.hidden;
}

absl::StatusOr<torch::Tensor> ModuleWeightFp32(const TransformerWeights& weights, const std::string& module) {
  if (weights.tensors.count(module + ".weight_packed") > 0) {
    const LayerStorage& s = ModuleStorage(weights.config, module);
    PackedTensors t{weights.tensors.at(module + ".weight_packed"), weights.tensors.at(module + ".weight_scales"),
                    weights.tensors.at(module + ".weight_zeros")};
    const int64_t rows = t.scales.dim() == 2 ? t.scales.size(0) : -1;
    SHRINK_ASSIGN_OR_RETURN(PackedGroupWeight packed,
                            FromTensors(t, rows, ModuleInputs(weights, module), s.bits, s.group_size, module));
    return DequantizedTensor(packed);
  }
  auto it = weights.tensors.find(module + ".weight");
  if (it == weights.tensors.end()) return absl::InvalidArgumentError(absl::StrCat("missing tensor ", module, ".weight"));
  return Float32ModuleWeight(weights, module);
}

torch::Tensor Float32ModuleWeight(const TransformerWeights& weights, const std::string& module) {
  if (weights.tensors.count(module + ".weight_packed") > 0) {
    auto w = ModuleWeightFp32(weights, module);
    TORCH_CHECK(w.ok(), std::string(w.status().message()));
    return *w;
  }
  const torch::Tensor& t = weights.tensors.at(module + ".weight");
  if (t.scalar_type() == torch::kInt8) {
    const torch::Tensor& scale = weights.tensors.at(module + ".weight_scale");
    return t.to(torch::kFloat32) * scale.view({-1, 1});
  }
  return t.to(torch::kFloat32);
}

}  // namespace shrink::worker
