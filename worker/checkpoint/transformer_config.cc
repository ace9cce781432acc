#include "worker/checkpoint/transformer_config.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace shrink::worker {
namespace {

// The most blocks a config may declare (the largest public models have about 100); more is
// taken for a corrupt file rather than allocated.
constexpr int64_t kMaxTransformerLayers = 1024;


using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// HF's field names per family for the common quantities.
struct FieldNames {
  const char* hidden;
  const char* layers;
  const char* heads;
  const char* intermediate;
  const char* positions;
  const char* eps;
  const char* activation;
};

FieldNames NamesFor(TransformerFamily family) {
  switch (family) {
    case TransformerFamily::kDistilBert:
      return {"dim", "n_layers", "n_heads", "hidden_dim", "max_position_embeddings", nullptr, "activation"};
    case TransformerFamily::kGpt2:
      return {"n_embd", "n_layer", "n_head", "n_inner", "n_positions", "layer_norm_epsilon", "activation_function"};
    default:
      return {"hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "max_position_embeddings", "layer_norm_eps", "hidden_act"};
  }
}

class Reader {
 public:
  Reader(const Json& json, const std::string& origin) : json_(json), origin_(origin) {}

  absl::Status Error(const std::string& field, const std::string& why) const {
    return absl::InvalidArgumentError(absl::StrCat(origin_, ": \"", field, "\" ", why));
  }

  // A required positive integer.
  absl::StatusOr<int64_t> Positive(const std::string& field) const {
    auto it = json_.find(field);
    if (it == json_.end()) return Error(field, "is missing");
    if (!it->is_number_integer() || it->get<int64_t>() <= 0) {
      return Error(field, absl::StrCat("must be a positive integer, got ", it->dump()));
    }
    return it->get<int64_t>();
  }

  // An optional integer >= 0 (null counts as absent).
  absl::StatusOr<int64_t> NonNegative(const std::string& field, int64_t fallback) const {
    auto it = json_.find(field);
    if (it == json_.end() || it->is_null()) return fallback;
    if (!it->is_number_integer() || it->get<int64_t>() < 0) {
      return Error(field, absl::StrCat("must be an integer >= 0, got ", it->dump()));
    }
    return it->get<int64_t>();
  }

  absl::StatusOr<double> PositiveNumber(const std::string& field, double fallback) const {
    auto it = json_.find(field);
    if (it == json_.end() || it->is_null()) return fallback;
    if (!it->is_number() || !(it->get<double>() > 0)) {
      return Error(field, absl::StrCat("must be a positive number, got ", it->dump()));
    }
    return it->get<double>();
  }

  absl::StatusOr<std::string> String(const std::string& field, const std::string& fallback) const {
    auto it = json_.find(field);
    if (it == json_.end() || it->is_null()) return fallback;
    if (!it->is_string()) return Error(field, absl::StrCat("must be a string, got ", it->dump()));
    return it->get<std::string>();
  }

 private:
  const Json& json_;
  const std::string& origin_;
};

}  // namespace

std::string FamilyName(TransformerFamily family) {
  switch (family) {
    case TransformerFamily::kBert: return "bert";
    case TransformerFamily::kDistilBert: return "distilbert";
    case TransformerFamily::kRoberta: return "roberta";
    case TransformerFamily::kGpt2: return "gpt2";
  }
  return "bert";
}

bool IsTransformerModelType(const std::string& model_type) {
  return model_type == "bert" || model_type == "distilbert" || model_type == "roberta" || model_type == "gpt2";
}

absl::StatusOr<TransformerConfig> ParseTransformerConfig(const std::string& text, const std::string& origin) {
  Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": not a valid JSON object"));
  }
  Reader r(json, origin);
  TransformerConfig c;
  c.original_json = text;
  auto type = json.find("model_type");
  if (type == json.end() || !type->is_string()) return r.Error("model_type", "is missing or not a string");
  const std::string model_type = type->get<std::string>();
  if (model_type == "bert") {
    c.family = TransformerFamily::kBert;
  } else if (model_type == "distilbert") {
    c.family = TransformerFamily::kDistilBert;
  } else if (model_type == "roberta") {
    c.family = TransformerFamily::kRoberta;
  } else if (model_type == "gpt2") {
    c.family = TransformerFamily::kGpt2;
  } else {
    return r.Error("model_type", absl::StrCat("\"", model_type, "\" is not bert, distilbert, roberta or gpt2"));
  }
  const FieldNames f = NamesFor(c.family);
  auto assign = [](auto& out, auto value) -> absl::Status {
    if (!value.ok()) return value.status();
    out = *value;
    return absl::OkStatus();
  };
  absl::Status s;
  if (!(s = assign(c.vocab_size, r.Positive("vocab_size"))).ok()) return s;
  if (!(s = assign(c.hidden, r.Positive(f.hidden))).ok()) return s;
  if (!(s = assign(c.num_layers, r.Positive(f.layers))).ok()) return s;
  // The per-layer shapes are allocated next: a corrupt count must not ask for terabytes.
  if (c.num_layers > kMaxTransformerLayers) {
    return r.Error(f.layers, absl::StrCat("is ", c.num_layers, "; at most ", kMaxTransformerLayers, " layers are supported"));
  }
  if (!(s = assign(c.num_heads, r.Positive(f.heads))).ok()) return s;
  if (!(s = assign(c.max_positions, r.Positive(f.positions))).ok()) return s;
  if (c.family == TransformerFamily::kGpt2) {
    // n_inner null means 4 * n_embd, as in HF.
    if (!(s = assign(c.intermediate, r.NonNegative(f.intermediate, 0))).ok()) return s;
    if (c.intermediate == 0) c.intermediate = 4 * c.hidden;
  } else if (!(s = assign(c.intermediate, r.Positive(f.intermediate))).ok()) {
    return s;
  }
  if (c.hidden % c.num_heads != 0) {
    return r.Error(f.heads, absl::StrCat("(", c.num_heads, ") does not divide ", f.hidden, " (", c.hidden, ")"));
  }
  const bool roberta = c.family == TransformerFamily::kRoberta;
  const bool gpt2 = c.family == TransformerFamily::kGpt2;
  double default_eps = (roberta || gpt2) ? 1e-5 : 1e-12;
  if (f.eps != nullptr) {
    if (!(s = assign(c.layer_norm_eps, r.PositiveNumber(f.eps, default_eps))).ok()) return s;
  } else {
    c.layer_norm_eps = default_eps;
  }
  if (!(s = assign(c.activation, r.String(f.activation, gpt2 ? "gelu_new" : "gelu"))).ok()) return s;
  if (c.activation == "gelu_pytorch_tanh") c.activation = "gelu_new";
  if (c.activation != "gelu" && c.activation != "gelu_new" && c.activation != "relu") {
    return r.Error(f.activation, absl::StrCat("\"", c.activation, "\" is not gelu, gelu_new or relu"));
  }
  if (c.family == TransformerFamily::kBert || roberta) {
    if (!(s = assign(c.type_vocab_size, r.NonNegative("type_vocab_size", 2))).ok()) return s;
  }
  if (!(s = assign(c.pad_token_id, r.NonNegative("pad_token_id", roberta ? 1 : 0))).ok()) return s;
  if (roberta && c.max_positions <= c.position_offset()) {
    return r.Error(f.positions, absl::StrCat("(", c.max_positions, ") leaves no positions after the padding_idx+1 offset"));
  }
  if (auto labels = json.find("id2label"); labels != json.end() && !labels->is_null()) {
    if (!labels->is_object() || labels->empty()) return r.Error("id2label", "must be a non-empty object");
    c.label_names.assign(labels->size(), "");
    for (auto it = labels->begin(); it != labels->end(); ++it) {
      size_t index = 0;
      try {
        index = std::stoul(it.key());
      } catch (...) {
        return r.Error("id2label", absl::StrCat("key \"", it.key(), "\" is not a label index"));
      }
      if (index >= c.label_names.size() || !it.value().is_string()) {
        return r.Error("id2label", absl::StrCat("entry \"", it.key(), "\" is out of range or not a string"));
      }
      c.label_names[index] = it.value().get<std::string>();
    }
    c.num_labels = static_cast<int64_t>(c.label_names.size());
  }
  if (auto n = json.find("num_labels"); n != json.end()) {
    if (!n->is_number_integer() || n->get<int64_t>() <= 0) return r.Error("num_labels", "must be a positive integer");
    if (!c.label_names.empty() && n->get<int64_t>() != c.num_labels) {
      return r.Error("num_labels", absl::StrCat("is ", n->get<int64_t>(), " but id2label has ", c.num_labels, " entries"));
    }
    c.num_labels = n->get<int64_t>();
  }
  c.layers.assign(c.num_layers, TransformerLayerShape{c.num_heads, c.intermediate});
  if (auto layers = json.find("shrink_layers"); layers != json.end()) {
    if (!layers->is_array() || static_cast<int64_t>(layers->size()) != c.num_layers) {
      return r.Error("shrink_layers", absl::StrCat("must be an array of ", c.num_layers, " layer shapes (", f.layers, ")"));
    }
    for (size_t i = 0; i < layers->size(); ++i) {
      const Json& layer = (*layers)[i];
      auto heads = layer.find("heads");
      auto inter = layer.find("intermediate");
      if (!layer.is_object() || heads == layer.end() || inter == layer.end() || !heads->is_number_integer() ||
          !inter->is_number_integer() || heads->get<int64_t>() <= 0 || inter->get<int64_t>() <= 0) {
        return r.Error(absl::StrCat("shrink_layers[", i, "]"), "needs positive integers \"heads\" and \"intermediate\"");
      }
      c.layers[i] = {heads->get<int64_t>(), inter->get<int64_t>()};
    }
  }
  if (auto q = json.find("shrink_quantization"); q != json.end()) {
    if (!q->is_object()) return r.Error("shrink_quantization", "must be an object");
    for (auto it = q->begin(); it != q->end(); ++it) {
      auto bits = it.value().find("bits");
      auto scheme = it.value().find("scheme");
      if (!it.value().is_object() || bits == it.value().end() || scheme == it.value().end() ||
          !bits->is_number_integer() || !scheme->is_string()) {
        return r.Error(absl::StrCat("shrink_quantization.", it.key()), "needs integer \"bits\" and string \"scheme\"");
      }
      LayerStorage storage{bits->get<int>(), scheme->get<std::string>()};
      if (auto group = it.value().find("group_size"); group != it.value().end()) {
        if (!group->is_number_integer() || group->get<int64_t>() <= 0) {
          return r.Error(absl::StrCat("shrink_quantization.", it.key(), ".group_size"), "must be a positive integer");
        }
        storage.group_size = group->get<int64_t>();
      }
      if (auto method = it.value().find("method"); method != it.value().end()) {
        if (!method->is_string()) return r.Error(absl::StrCat("shrink_quantization.", it.key(), ".method"), "must be a string");
        storage.method = method->get<std::string>();
      }
      c.storage[it.key()] = storage;
    }
  }
  if (auto compressed = json.find("shrink_compressed"); compressed != json.end()) {
    if (!compressed->is_boolean()) return r.Error("shrink_compressed", "must be true or false");
    c.compressed = compressed->get<bool>();
  }
  if (auto policy = json.find("shrink_policy"); policy != json.end()) c.policy_json = policy->dump();
  return c;
}

std::string TransformerConfigJson(const TransformerConfig& c) {
  OrderedJson out = OrderedJson::object();
  const FieldNames f = NamesFor(c.family);
  out["model_type"] = FamilyName(c.family);
  switch (c.family) {
    case TransformerFamily::kBert: out["architectures"] = {"BertForSequenceClassification"}; break;
    case TransformerFamily::kDistilBert: out["architectures"] = {"DistilBertForSequenceClassification"}; break;
    case TransformerFamily::kRoberta: out["architectures"] = {"RobertaForSequenceClassification"}; break;
    case TransformerFamily::kGpt2: out["architectures"] = {"GPT2LMHeadModel"}; break;
  }
  out["vocab_size"] = c.vocab_size;
  out[f.hidden] = c.hidden;
  out[f.layers] = c.num_layers;
  out[f.heads] = c.num_heads;
  out[f.intermediate] = c.intermediate;
  out[f.positions] = c.max_positions;
  if (c.family == TransformerFamily::kGpt2) out["n_ctx"] = c.max_positions;
  if (f.eps != nullptr) out[f.eps] = c.layer_norm_eps;
  out[f.activation] = c.activation;
  if (c.type_vocab_size > 0) out["type_vocab_size"] = c.type_vocab_size;
  out["pad_token_id"] = c.pad_token_id;
  if (!c.is_decoder()) {
    OrderedJson id2label = OrderedJson::object(), label2id = OrderedJson::object();
    for (int64_t i = 0; i < c.num_labels; ++i) {
      std::string name = i < static_cast<int64_t>(c.label_names.size()) ? c.label_names[i] : absl::StrCat("LABEL_", i);
      id2label[std::to_string(i)] = name;
      label2id[name] = i;
    }
    out["id2label"] = id2label;
    out["label2id"] = label2id;
  }
  // Keys of the original config we do not interpret (token ids, dropout, ...) survive a save.
  Json original = Json::parse(c.original_json.empty() ? "{}" : c.original_json, nullptr, false);
  if (original.is_object()) {
    for (auto it = original.begin(); it != original.end(); ++it) {
      if (out.contains(it.key()) || it.key().rfind("shrink_", 0) == 0 || it.key() == "num_labels") continue;
      out[it.key()] = it.value();
    }
  }
  OrderedJson layers = OrderedJson::array();
  for (const auto& layer : c.layers) layers.push_back({{"heads", layer.heads}, {"intermediate", layer.intermediate}});
  out["shrink_layers"] = layers;
  OrderedJson quantization = OrderedJson::object();
  for (const auto& [layer, storage] : c.storage) {
    if (storage.scheme == kSchemeFloat32) continue;
    quantization[layer] = {{"bits", storage.bits}, {"scheme", storage.scheme}};
    if (storage.group_size > 0) quantization[layer]["group_size"] = storage.group_size;
    if (!storage.method.empty()) quantization[layer]["method"] = storage.method;
  }
  out["shrink_quantization"] = quantization;
  if (c.compressed) {
    out["shrink_compressed"] = true;
    Json policy = Json::parse(c.policy_json.empty() ? "null" : c.policy_json, nullptr, false);
    if (!policy.is_discarded() && !policy.is_null()) out["shrink_policy"] = policy;
  }
  return out.dump(2) + "\n";
}

absl::StatusOr<TransformerConfig> TransformerPreset(const std::string& arch, const std::string& preset,
                                                    int64_t vocab_size, int64_t num_labels) {
  TransformerConfig c;
  auto shape = [&](int64_t hidden, int64_t layers, int64_t heads, int64_t inter, int64_t positions) {
    c.hidden = hidden;
    c.num_layers = layers;
    c.num_heads = heads;
    c.intermediate = inter;
    c.max_positions = positions;
  };
  if (arch == "bert" || arch == "roberta") {
    const bool roberta = arch == "roberta";
    c.family = roberta ? TransformerFamily::kRoberta : TransformerFamily::kBert;
    c.type_vocab_size = roberta ? 1 : 2;
    c.layer_norm_eps = roberta ? 1e-5 : 1e-12;
    c.activation = "gelu";
    c.vocab_size = vocab_size > 0 ? vocab_size : (roberta ? 50265 : 30522);
    c.pad_token_id = roberta ? 1 : 0;  // RoBERTa's <pad>; its positions start at pad + 1
    if (preset == "base") {
      shape(768, 12, 12, 3072, 512);
    } else if (preset == "reference") {
      shape(256, 4, 4, 1024, 128);
    } else if (preset == "deep") {
      shape(256, 8, 4, 1024, 128);
    } else if (preset == "tiny") {
      shape(64, 2, 2, 128, 128);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown ", arch, " preset \"", preset, "\" (base, reference, deep, tiny)"));
    }
    if (roberta) c.max_positions += c.position_offset();
  } else if (arch == "gpt2") {
    c.family = TransformerFamily::kGpt2;
    c.layer_norm_eps = 1e-5;
    c.activation = "gelu_new";
    c.vocab_size = vocab_size > 0 ? vocab_size : 50257;
    if (preset == "small") {
      shape(768, 12, 12, 3072, 1024);
    } else if (preset == "reference") {
      shape(256, 4, 4, 1024, 128);
    } else if (preset == "tiny") {
      shape(64, 2, 2, 128, 128);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown gpt2 preset \"", preset, "\" (small, reference, tiny)"));
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown transformer arch \"", arch, "\" (bert, roberta, gpt2)"));
  }
  c.num_labels = num_labels > 0 ? num_labels : 2;
  c.layers.assign(c.num_layers, TransformerLayerShape{c.num_heads, c.intermediate});
  return c;
}

}  // namespace shrink::worker
