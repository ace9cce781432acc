#include "worker/tokenizers/tokenizer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "worker/tokenizers/byte_bpe.h"
#include "worker/tokenizers/wordpiece.h"

namespace shrink::worker {
namespace {

// tokenizer_config.json as a JSON object; an empty object when the file is absent.
absl::StatusOr<nlohmann::json> ReadTokenizerConfig(const std::string& dir) {
  const std::string path = dir + "/tokenizer_config.json";
  if (!PathExists(path)) return nlohmann::json::object();
  SHRINK_ASSIGN_OR_RETURN(std::string contents, ReadFile(path));
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(contents);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": invalid JSON: ", e.what()));
  }
  if (!json.is_object()) return absl::InvalidArgumentError(absl::StrCat(path, ": expected a JSON object"));
  return json;
}

// A boolean config entry, or `fallback` when absent.
absl::StatusOr<bool> ConfigBool(const nlohmann::json& config, const std::string& key, bool fallback,
                                const std::string& dir) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    return absl::InvalidArgumentError(absl::StrCat(dir, "/tokenizer_config.json: ", key, " must be true or false"));
  }
  return it->get<bool>();
}

// Applies the *_token entries (a string, {"content": string}, or null = none) over `names`.
absl::Status ApplyConfigSpecials(const nlohmann::json& config, const std::string& dir, SpecialTokenNames* names) {
  const std::pair<const char*, std::string*> keys[] = {
      {"pad_token", &names->pad}, {"unk_token", &names->unk},   {"cls_token", &names->cls},
      {"sep_token", &names->sep}, {"bos_token", &names->bos},   {"eos_token", &names->eos},
      {"mask_token", &names->mask}};
  for (const auto& [key, name] : keys) {
    auto it = config.find(key);
    if (it == config.end()) continue;
    if (it->is_null()) {
      name->clear();
    } else if (it->is_string()) {
      *name = it->get<std::string>();
    } else if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
      *name = (*it)["content"].get<std::string>();
    } else {
      return absl::InvalidArgumentError(absl::StrCat(dir, "/tokenizer_config.json: ", key,
                                                     " must be a string, {\"content\": string} or null"));
    }
  }
  return absl::OkStatus();
}

// Keeps a default special token only when the vocabulary has it.
template <typename Has>
void DropAbsent(SpecialTokenNames* names, Has has) {
  for (std::string* name : {&names->pad, &names->unk, &names->cls, &names->sep, &names->bos, &names->eos,
                            &names->mask}) {
    if (!name->empty() && !has(*name)) name->clear();
  }
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadByteBpe(const std::string& dir, const nlohmann::json& config) {
  SHRINK_ASSIGN_OR_RETURN(std::string vocab_text, ReadFile(dir + "/vocab.json"));
  SHRINK_ASSIGN_OR_RETURN(auto vocab, ParseVocabJson(vocab_text, dir + "/vocab.json"));
  SHRINK_ASSIGN_OR_RETURN(std::string merges_text, ReadFile(dir + "/merges.txt"));
  SHRINK_ASSIGN_OR_RETURN(auto merges, ParseMerges(merges_text, dir + "/merges.txt"));
  ByteBpeOptions options;
  auto has = [&](const std::string& t) {
    return std::any_of(vocab.begin(), vocab.end(), [&](const auto& v) { return v.first == t; });
  };
  if (has("<s>")) {  // RoBERTa's defaults
    options.specials = {"<pad>", "<unk>", "<s>", "</s>", "<s>", "</s>", "<mask>"};
    options.mask_lstrip = true;  // RobertaTokenizer's AddedToken("<mask>", lstrip=True)
  } else {  // GPT-2's
    options.specials = {"", "<|endoftext|>", "", "", "<|endoftext|>", "<|endoftext|>", ""};
  }
  DropAbsent(&options.specials, has);
  SHRINK_RETURN_IF_ERROR(ApplyConfigSpecials(config, dir, &options.specials));
  SHRINK_ASSIGN_OR_RETURN(options.add_prefix_space, ConfigBool(config, "add_prefix_space", false, dir));
  auto tok = ByteBpeTokenizer::Create(vocab, std::move(merges), std::move(options));
  if (!tok.ok()) return absl::InvalidArgumentError(absl::StrCat(dir, ": ", tok.status().message()));
  return std::unique_ptr<Tokenizer>(std::move(*tok));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadWordPiece(const std::string& dir, const nlohmann::json& config) {
  SHRINK_ASSIGN_OR_RETURN(std::string vocab_text, ReadFile(dir + "/vocab.txt"));
  SHRINK_ASSIGN_OR_RETURN(auto vocab, ParseVocabTxt(vocab_text, dir + "/vocab.txt"));
  WordPieceOptions options;
  SHRINK_ASSIGN_OR_RETURN(options.lower_case, ConfigBool(config, "do_lower_case", true, dir));
  SHRINK_ASSIGN_OR_RETURN(options.tokenize_chinese_chars, ConfigBool(config, "tokenize_chinese_chars", true, dir));
  auto strip = config.find("strip_accents");
  if (strip != config.end() && !strip->is_null()) {
    if (!strip->is_boolean()) {
      return absl::InvalidArgumentError(absl::StrCat(dir, "/tokenizer_config.json: strip_accents must be true, false or null"));
    }
    options.strip_accents = strip->get<bool>() ? 1 : 0;
  }
  DropAbsent(&options.specials,
             [&](const std::string& t) { return std::find(vocab.begin(), vocab.end(), t) != vocab.end(); });
  SHRINK_RETURN_IF_ERROR(ApplyConfigSpecials(config, dir, &options.specials));
  auto tok = WordPieceTokenizer::Create(std::move(vocab), std::move(options));
  if (!tok.ok()) return absl::InvalidArgumentError(absl::StrCat(dir, "/vocab.txt: ", tok.status().message()));
  return std::unique_ptr<Tokenizer>(std::move(*tok));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& dir) {
  SHRINK_ASSIGN_OR_RETURN(nlohmann::json config, ReadTokenizerConfig(dir));
  if (PathExists(dir + "/vocab.json") && PathExists(dir + "/merges.txt")) return LoadByteBpe(dir, config);
  if (PathExists(dir + "/vocab.txt")) return LoadWordPiece(dir, config);
  return absl::NotFoundError(
      absl::StrCat(dir, " has no tokenizer files (vocab.txt, or vocab.json + merges.txt)"));
}

std::vector<int64_t> EncodeForClassification(const Tokenizer& tok, std::string_view text, int max_len) {
  if (max_len <= 0) return {};
  const SpecialTokens& s = tok.Specials();
  const int64_t cls = s.cls >= 0 ? s.cls : -1;
  const int64_t sep = s.sep >= 0 ? s.sep : -1;
  std::vector<int64_t> ids = tok.Encode(text);
  const int specials = (cls >= 0 ? 1 : 0) + (sep >= 0 ? 1 : 0);
  const size_t room = static_cast<size_t>(std::max(0, max_len - specials));
  if (ids.size() > room) ids.resize(room);
  std::vector<int64_t> out;
  out.reserve(ids.size() + specials);
  if (cls >= 0) out.push_back(cls);
  out.insert(out.end(), ids.begin(), ids.end());
  if (sep >= 0 && static_cast<int>(out.size()) < max_len) out.push_back(sep);
  if (static_cast<int>(out.size()) > max_len) out.resize(max_len);
  return out;
}

void SplitOnSpecialTokens(std::string_view text, const std::vector<std::string>& specials,
                          const std::function<void(std::string_view)>& on_text,
                          const std::function<void(const std::string&)>& on_special) {
  // next[i]: where specials[i] next occurs at or after `pos` (npos = never again).
  std::vector<size_t> next(specials.size());
  for (size_t i = 0; i < specials.size(); ++i) {
    next[i] = specials[i].empty() ? std::string_view::npos : text.find(specials[i]);
  }
  size_t pos = 0;
  while (pos < text.size()) {
    size_t best = std::string_view::npos;
    const std::string* match = nullptr;
    for (size_t i = 0; i < specials.size(); ++i) {
      const std::string& s = specials[i];
      if (next[i] == std::string_view::npos) continue;
      if (next[i] < pos) next[i] = text.find(s, pos);
      if (next[i] == std::string_view::npos) continue;
      if (next[i] < best || (next[i] == best && s.size() > match->size())) {
        best = next[i];
        match = &s;
      }
    }
    if (match == nullptr) break;
    if (best > pos) on_text(text.substr(pos, best - pos));
    on_special(*match);
    pos = best + match->size();
  }
  if (pos < text.size()) on_text(text.substr(pos));
}

}  // namespace shrink::worker
