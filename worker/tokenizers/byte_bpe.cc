#include "worker/tokenizers/byte_bpe.h"

#include <algorithm>
#include <climits>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "worker/tokenizers/normalize.h"

namespace shrink::worker {
namespace {

enum class CharClass { kLetter, kNumber, kSpace, kOther };

CharClass Classify(char32_t c) {
  if (unicode::IsLetter(c)) return CharClass::kLetter;
  if (unicode::IsNumber(c)) return CharClass::kNumber;
  if (unicode::IsWhiteSpace(c)) return CharClass::kSpace;
  return CharClass::kOther;
}

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

}  // namespace

const std::array<std::string, 256>& ByteToUnicode() {
  static const auto* table = [] {
    auto* t = new std::array<std::string, 256>();
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char32_t c = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + next++);
      unicode::AppendUtf8(c, &(*t)[b]);
    }
    return t;
  }();
  return *table;
}

std::vector<std::string_view> Gpt2PreTokenize(std::string_view text) {
  std::vector<char32_t> cps;
  std::vector<size_t> starts;
  size_t pos = 0;
  while (pos < text.size()) {
    starts.push_back(pos);
    cps.push_back(unicode::DecodeUtf8(text, &pos));
  }
  starts.push_back(text.size());
  const size_t n = cps.size();
  std::vector<CharClass> cls(n);
  for (size_t i = 0; i < n; ++i) cls[i] = Classify(cps[i]);
  auto run = [&](size_t j, CharClass c) {
    while (j < n && cls[j] == c) ++j;
    return j;
  };

  std::vector<std::string_view> pieces;
  size_t i = 0;
  while (i < n) {
    size_t end = 0;
    const char32_t c = cps[i];
    if (c == '\'' && i + 1 < n) {  // 's|'t|'re|'ve|'m|'ll|'d
      const char32_t c1 = cps[i + 1];
      const char32_t c2 = i + 2 < n ? cps[i + 2] : 0;
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
        end = i + 2;
      } else if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
        end = i + 3;
      }
    }
    if (end == 0) {
      const bool space_prefix = c == ' ' && i + 1 < n && cls[i + 1] != CharClass::kSpace;
      if (space_prefix) {  // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+" with the space
        end = run(i + 1, cls[i + 1]);
      } else if (cls[i] != CharClass::kSpace) {
        end = run(i, cls[i]);
      } else {  // \s+(?!\S) | \s+
        const size_t j = run(i, CharClass::kSpace);
        end = (j == n || j - i == 1) ? j : j - 1;
      }
    }
    pieces.push_back(text.substr(starts[i], starts[end] - starts[i]));
    i = end;
  }
  return pieces;
}

absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> ParseVocabJson(std::string_view contents,
                                                                           const std::string& origin) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(contents.begin(), contents.end());
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": invalid JSON: ", e.what()));
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": expected an object {\"token\": id}"));
  }
  std::vector<std::pair<std::string, int64_t>> vocab;
  for (auto it = json.begin(); it != json.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ": the id of token '", it.key(), "' is not a non-negative integer"));
    }
    vocab.emplace_back(it.key(), it.value().get<int64_t>());
  }
  if (vocab.empty()) return absl::InvalidArgumentError(absl::StrCat(origin, ": no tokens"));
  std::sort(vocab.begin(), vocab.end(),
            [](const auto& a, const auto& b) { return std::tie(a.second, a.first) < std::tie(b.second, b.first); });
  for (size_t i = 1; i < vocab.size(); ++i) {
    if (vocab[i].second == vocab[i - 1].second) {
      return absl::InvalidArgumentError(absl::StrCat(origin, ": tokens '", vocab[i - 1].first, "' and '",
                                                     vocab[i].first, "' share id ", vocab[i].second));
    }
  }
  if (vocab.back().second > 10 * static_cast<int64_t>(vocab.size()) + 1000) {  // ids index a dense table
    return absl::InvalidArgumentError(absl::StrCat(origin, ": id ", vocab.back().second, " of '", vocab.back().first,
                                                   "' is far beyond the ", vocab.size(), " tokens"));
  }
  return vocab;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseMerges(std::string_view contents,
                                                                            const std::string& origin) {
  std::vector<std::pair<std::string, std::string>> merges;
  size_t pos = 0;
  int64_t line = 0;
  while (pos < contents.size()) {
    ++line;
    size_t end = contents.find('\n', pos);
    if (end == std::string_view::npos) end = contents.size();
    std::string_view text = contents.substr(pos, end - pos);
    pos = end + 1;
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (text.empty()) continue;
    if (line == 1 && text.substr(0, 8) == "#version") continue;
    const size_t space = text.find(' ');
    if (space == std::string_view::npos || space == 0 || space + 1 == text.size() ||
        text.find(' ', space + 1) != std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, " line ", line, ": expected two tokens separated by one space, got '", std::string(text), "'"));
    }
    merges.emplace_back(std::string(text.substr(0, space)), std::string(text.substr(space + 1)));
  }
  return merges;
}

int32_t ByteBpeTokenizer::Intern(const std::string& symbol) {
  auto [it, inserted] = symbol_ids_.emplace(symbol, static_cast<int32_t>(symbols_.size()));
  if (inserted) {
    symbols_.push_back(symbol);
    auto v = token_to_id_.find(symbol);
    symbol_vocab_id_.push_back(v == token_to_id_.end() ? -1 : v->second);
  }
  return it->second;
}

absl::StatusOr<std::unique_ptr<ByteBpeTokenizer>> ByteBpeTokenizer::Create(
    const std::vector<std::pair<std::string, int64_t>>& vocab,
    std::vector<std::pair<std::string, std::string>> merges, ByteBpeOptions options) {
  std::unique_ptr<ByteBpeTokenizer> tok(new ByteBpeTokenizer());
  int64_t max_id = -1;
  for (const auto& [token, id] : vocab) {
    if (id < 0) return absl::InvalidArgumentError(absl::StrCat("token '", token, "' has a negative id"));
    if (!tok->token_to_id_.emplace(token, id).second) {
      return absl::InvalidArgumentError(absl::StrCat("token '", token, "' appears twice in the vocabulary"));
    }
    max_id = std::max(max_id, id);
  }
  if (max_id > 10 * static_cast<int64_t>(vocab.size()) + 1000) {
    return absl::InvalidArgumentError(absl::StrCat("id ", max_id, " is far beyond the ", vocab.size(), " tokens"));
  }
  tok->id_to_token_.assign(max_id + 1, std::string());
  for (const auto& [token, id] : vocab) {
    if (!tok->id_to_token_[id].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("id ", id, " is used by two tokens"));
    }
    tok->id_to_token_[id] = token;
  }
  const auto& byte_to_unicode = ByteToUnicode();
  for (int b = 0; b < 256; ++b) {
    if (!tok->token_to_id_.count(byte_to_unicode[b])) {
      return absl::InvalidArgumentError(absl::StrCat("the vocabulary lacks the symbol '", byte_to_unicode[b],
                                                     "' of byte ", b, " (not a byte-level BPE vocabulary)"));
    }
    tok->byte_symbol_[b] = tok->Intern(byte_to_unicode[b]);
    size_t p = 0;
    tok->unicode_to_byte_[unicode::DecodeUtf8(byte_to_unicode[b], &p)] = static_cast<uint8_t>(b);
  }
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    const std::string result = left + right;
    if (!tok->token_to_id_.count(result)) {
      return absl::InvalidArgumentError(
          absl::StrCat("merge ", rank + 1, " ('", left, " ", right, "'): '", result, "' is not in the vocabulary"));
    }
    const int32_t a = tok->Intern(left), b = tok->Intern(right), r = tok->Intern(result);
    if (!tok->merge_of_pair_.emplace(PairKey(a, b), Merge{static_cast<int32_t>(rank), r}).second) {
      return absl::InvalidArgumentError(absl::StrCat("merge ", rank + 1, " ('", left, " ", right, "') is repeated"));
    }
  }
  tok->merges_ = std::move(merges);
  tok->options_ = std::move(options);
  const SpecialTokenNames& names = tok->options_.specials;
  for (const std::string* name : {&names.pad, &names.unk, &names.cls, &names.sep, &names.bos,
                                  &names.eos, &names.mask}) {
    if (name->empty()) continue;
    if (!tok->token_to_id_.count(*name)) {
      return absl::InvalidArgumentError(absl::StrCat("special token '", *name, "' is not in the vocabulary"));
    }
    if (std::find(tok->special_strings_.begin(), tok->special_strings_.end(), *name) == tok->special_strings_.end()) {
      tok->special_strings_.push_back(*name);
    }
  }
  tok->specials_ = ResolveSpecials(names, [&](const std::string& s) { return tok->TokenToId(s); });
  return tok;
}

void ByteBpeTokenizer::EncodePiece(std::string_view piece, std::vector<int64_t>* out) const {
  std::vector<int32_t> word;
  word.reserve(piece.size());
  for (unsigned char b : piece) word.push_back(byte_symbol_[b]);
  std::vector<int32_t> next;
  while (word.size() > 1) {
    int32_t best_rank = INT32_MAX;
    const Merge* best = nullptr;
    int32_t left = 0, right = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = merge_of_pair_.find(PairKey(word[i], word[i + 1]));
      if (it != merge_of_pair_.end() && it->second.rank < best_rank) {
        best_rank = it->second.rank;
        best = &it->second;
        left = word[i], right = word[i + 1];
      }
    }
    if (best == nullptr) break;
    next.clear();
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == left && word[i + 1] == right) {
        next.push_back(best->result);
        i += 2;
      } else {
        next.push_back(word[i]);
        ++i;
      }
    }
    word.swap(next);
  }
  for (int32_t symbol : word) out->push_back(symbol_vocab_id_[symbol]);
}

void ByteBpeTokenizer::EncodeText(std::string_view text, std::vector<int64_t>* out) const {
  for (std::string_view piece : Gpt2PreTokenize(text)) EncodePiece(piece, out);
}

std::vector<int64_t> ByteBpeTokenizer::Encode(std::string_view text) const {
  std::string prefixed;
  if (options_.add_prefix_space) {
    prefixed = " " + std::string(text);
    text = prefixed;
  }
  // Text segments and special tokens in order; the text is encoded once the
  // next token is known, since RoBERTa's <mask> swallows the white space before it.
  std::vector<int64_t> ids;
  std::string_view pending;
  SplitOnSpecialTokens(
      text, special_strings_, [&](std::string_view segment) { pending = segment; },
      [&](const std::string& special) {
        if (options_.mask_lstrip && special == options_.specials.mask) {
          size_t pos = pending.size();
          while (pos > 0) {  // strip trailing white space (whole code points)
            size_t start = pos - 1;
            while (start > 0 && (static_cast<unsigned char>(pending[start]) & 0xC0) == 0x80) --start;
            size_t end = start;
            if (!unicode::IsPythonSpace(unicode::DecodeUtf8(pending, &end)) || end != pos) break;
            pos = start;
          }
          pending = pending.substr(0, pos);
        }
        EncodeText(pending, &ids);
        pending = {};
        ids.push_back(TokenToId(special));
      });
  EncodeText(pending, &ids);
  return ids;
}

std::vector<std::string> ByteBpeTokenizer::Tokenize(std::string_view text) const {
  std::vector<std::string> tokens;
  for (int64_t id : Encode(text)) tokens.push_back(id_to_token_[id]);
  return tokens;
}

std::string ByteBpeTokenizer::Decode(const std::vector<int64_t>& ids) const {
  std::string out;
  for (int64_t id : ids) {
    if (id < 0 || id >= VocabSize()) continue;
    const std::string& token = id_to_token_[id];
    size_t pos = 0;
    while (pos < token.size()) {
      const size_t start = pos;
      char32_t c = unicode::DecodeUtf8(token, &pos);
      auto it = unicode_to_byte_.find(c);
      if (it != unicode_to_byte_.end()) {
        out.push_back(static_cast<char>(it->second));
      } else {
        out.append(token, start, pos - start);
      }
    }
  }
  return out;
}

std::string ByteBpeTokenizer::IdToToken(int64_t id) const {
  return id >= 0 && id < VocabSize() ? id_to_token_[id] : std::string();
}

int64_t ByteBpeTokenizer::TokenToId(std::string_view token) const {
  auto it = token_to_id_.find(std::string(token));
  return it == token_to_id_.end() ? -1 : it->second;
}

absl::Status ByteBpeTokenizer::Save(const std::string& dir) const {
  SHRINK_RETURN_IF_ERROR(MakeDirs(dir));
  nlohmann::json vocab = nlohmann::json::object();
  for (const auto& [token, id] : token_to_id_) vocab[token] = id;
  std::string merges = "#version: 0.2\n";
  for (const auto& [left, right] : merges_) absl::StrAppend(&merges, left, " ", right, "\n");
  const SpecialTokenNames& n = options_.specials;
  nlohmann::json config = {{"tokenizer_class", n.cls == "<s>" ? "RobertaTokenizer" : "GPT2Tokenizer"},
                           {"add_prefix_space", options_.add_prefix_space}};
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"pad_token", n.pad}, {"unk_token", n.unk}, {"cls_token", n.cls}, {"sep_token", n.sep},
           {"bos_token", n.bos}, {"eos_token", n.eos}, {"mask_token", n.mask}}) {
    config[key] = value.empty() ? nlohmann::json(nullptr) : nlohmann::json(value);
  }
  constexpr auto kReplace = nlohmann::json::error_handler_t::replace;
  SHRINK_RETURN_IF_ERROR(WriteFileAtomic(dir + "/vocab.json", vocab.dump(2, ' ', false, kReplace) + "\n"));
  SHRINK_RETURN_IF_ERROR(WriteFileAtomic(dir + "/merges.txt", merges));
  return WriteFileAtomic(dir + "/tokenizer_config.json", config.dump(2, ' ', false, kReplace) + "\n");
}

}  // namespace shrink::worker
