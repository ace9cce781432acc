#include "worker/tokenizers/wordpiece.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/files.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "worker/tokenizers/normalize.h"

namespace shrink::worker {
namespace {

bool ShouldStripAccents(const WordPieceOptions& o) {
  return o.lower_case ? o.strip_accents != 0 : o.strip_accents == 1;
}

// One whitespace-split token through lower casing, accent stripping and
// punctuation splitting; appends the resulting words.
void ProcessToken(const std::u32string& token, const WordPieceOptions& options,
                  std::vector<std::string>* out) {
  std::u32string text;
  if (options.lower_case) {
    for (char32_t c : token) unicode::AppendLower(c, &text);
  } else {
    text = token;
  }
  if (ShouldStripAccents(options)) {
    std::u32string nfd;
    for (char32_t c : text) unicode::AppendNfd(c, &nfd);
    text.clear();
    for (char32_t c : nfd) {
      if (!unicode::IsNonspacingMark(c)) text.push_back(c);
    }
  }
  std::string word;
  for (char32_t c : text) {
    if (unicode::IsBertPunctuation(c)) {
      if (!word.empty()) out->push_back(std::move(word));
      word.clear();
      std::string punct;
      unicode::AppendUtf8(c, &punct);
      out->push_back(std::move(punct));
    } else if (unicode::IsPythonSpace(c)) {  // cannot survive the split, but stay safe
      if (!word.empty()) out->push_back(std::move(word));
      word.clear();
    } else {
      unicode::AppendUtf8(c, &word);
    }
  }
  if (!word.empty()) out->push_back(std::move(word));
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseVocabTxt(std::string_view contents, const std::string& origin) {
  std::vector<std::string> vocab;
  size_t pos = 0;
  int64_t line = 0;
  while (pos < contents.size()) {
    ++line;
    size_t end = contents.find('\n', pos);
    if (end == std::string_view::npos) end = contents.size();
    std::string_view token = contents.substr(pos, end - pos);
    if (!token.empty() && token.back() == '\r') token.remove_suffix(1);
    if (token.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(origin, " line ", line, ": empty token"));
    }
    vocab.emplace_back(token);
    pos = end + 1;
  }
  if (vocab.empty()) return absl::InvalidArgumentError(absl::StrCat(origin, ": no tokens"));
  return vocab;
}

std::vector<std::string> BertBasicTokenize(std::string_view text, const WordPieceOptions& options) {
  // _clean_text + _tokenize_chinese_chars, then whitespace split.
  std::vector<std::string> words;
  std::u32string token;
  auto flush = [&] {
    if (!token.empty()) ProcessToken(token, options, &words);
    token.clear();
  };
  size_t pos = 0;
  while (pos < text.size()) {
    char32_t c = unicode::DecodeUtf8(text, &pos);
    if (c == 0 || c == 0xFFFD || c >= unicode::kInvalidByteBase || unicode::IsBertControl(c)) continue;
    if (unicode::IsBertWhitespace(c) || unicode::IsPythonSpace(c)) {
      flush();
    } else if (options.tokenize_chinese_chars && unicode::IsCjkIdeograph(c)) {
      flush();
      token.push_back(c);
      flush();
    } else {
      token.push_back(c);
    }
  }
  flush();
  return words;
}

absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::Create(std::vector<std::string> vocab,
                                                                               WordPieceOptions options) {
  std::unique_ptr<WordPieceTokenizer> tok(new WordPieceTokenizer());
  for (size_t i = 0; i < vocab.size(); ++i) {
    const std::string& t = vocab[i];
    if (t.empty() || t.find('\n') != std::string::npos || t.find('\r') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("vocab token ", i, " is empty or has a line break"));
    }
    auto [it, inserted] = tok->ids_.emplace(t, static_cast<int64_t>(i));
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat("vocab token '", t, "' appears twice (lines ",
                                                     it->second + 1, " and ", i + 1, ")"));
    }
  }
  tok->vocab_ = std::move(vocab);
  tok->options_ = std::move(options);
  const SpecialTokenNames& names = tok->options_.specials;
  for (const std::string* name : {&names.pad, &names.unk, &names.cls, &names.sep, &names.bos,
                                  &names.eos, &names.mask}) {
    if (name->empty()) continue;
    if (!tok->ids_.count(*name)) {
      return absl::InvalidArgumentError(absl::StrCat("special token '", *name, "' is not in the vocabulary"));
    }
    tok->special_strings_.push_back(*name);
  }
  if (names.unk.empty()) return absl::InvalidArgumentError("WordPiece needs an unk token");
  tok->specials_ = ResolveSpecials(names, [&](const std::string& s) { return tok->TokenToId(s); });
  return tok;
}

void WordPieceTokenizer::WordPieceIds(const std::string& word, std::vector<int64_t>* out) const {
  // Byte offsets of each code point, so sub-words are plain substrings.
  std::vector<size_t> starts;
  size_t pos = 0;
  while (pos < word.size()) {
    starts.push_back(pos);
    unicode::DecodeUtf8(word, &pos);
  }
  const size_t n = starts.size();
  starts.push_back(word.size());
  if (static_cast<int>(n) > options_.max_chars_per_word) {
    out->push_back(specials_.unk);
    return;
  }
  const size_t first = out->size();
  std::string piece;
  size_t start = 0;
  while (start < n) {
    int64_t found = -1;
    size_t end = n;
    for (; end > start; --end) {
      piece.assign(start > 0 ? "##" : "");
      piece.append(word, starts[start], starts[end] - starts[start]);
      auto it = ids_.find(piece);
      if (it != ids_.end()) {
        found = it->second;
        break;
      }
    }
    if (found < 0) {  // the whole word is unknown
      out->resize(first);
      out->push_back(specials_.unk);
      return;
    }
    out->push_back(found);
    start = end;
  }
}

std::vector<int64_t> WordPieceTokenizer::Encode(std::string_view text) const {
  std::vector<int64_t> ids;
  SplitOnSpecialTokens(
      text, special_strings_,
      [&](std::string_view segment) {
        for (const std::string& word : BertBasicTokenize(segment, options_)) WordPieceIds(word, &ids);
      },
      [&](const std::string& special) { ids.push_back(TokenToId(special)); });
  return ids;
}

std::vector<std::string> WordPieceTokenizer::Tokenize(std::string_view text) const {
  std::vector<std::string> tokens;
  for (int64_t id : Encode(text)) tokens.push_back(vocab_[id]);
  return tokens;
}

std::string WordPieceTokenizer::Decode(const std::vector<int64_t>& ids) const {
  std::string joined;
  for (int64_t id : ids) {
    if (id < 0 || id >= VocabSize()) continue;
    if (!joined.empty()) joined += ' ';
    joined += vocab_[id];
  }
  std::string text = absl::StrReplaceAll(joined, {{" ##", ""}});
  // clean_up_tokenization_spaces, in HF's order.
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
           {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}}) {
    text = absl::StrReplaceAll(text, {{from, to}});
  }
  return text;
}

std::string WordPieceTokenizer::IdToToken(int64_t id) const {
  return id >= 0 && id < VocabSize() ? vocab_[id] : std::string();
}

int64_t WordPieceTokenizer::TokenToId(std::string_view token) const {
  auto it = ids_.find(std::string(token));
  return it == ids_.end() ? -1 : it->second;
}

absl::Status WordPieceTokenizer::Save(const std::string& dir) const {
  SHRINK_RETURN_IF_ERROR(MakeDirs(dir));
  SHRINK_RETURN_IF_ERROR(WriteFileAtomic(dir + "/vocab.txt", absl::StrJoin(vocab_, "\n") + "\n"));
  nlohmann::json config = {{"tokenizer_class", "BertTokenizer"},
                           {"do_lower_case", options_.lower_case},
                           {"tokenize_chinese_chars", options_.tokenize_chinese_chars}};
  config["strip_accents"] = options_.strip_accents < 0 ? nlohmann::json(nullptr)
                                                       : nlohmann::json(options_.strip_accents == 1);
  const SpecialTokenNames& n = options_.specials;
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"pad_token", n.pad}, {"unk_token", n.unk}, {"cls_token", n.cls}, {"sep_token", n.sep},
           {"bos_token", n.bos}, {"eos_token", n.eos}, {"mask_token", n.mask}}) {
    if (!value.empty()) config[key] = value;
  }
  return WriteFileAtomic(dir + "/tokenizer_config.json", config.dump(2) + "\n");
}

}  // namespace shrink::worker
