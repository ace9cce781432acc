// WordPiece as HF's BertTokenizer does it: BasicTokenizer (clean text, CJK
// splitting, whitespace split, lower case + accent stripping, punctuation split),
// then greedy longest-match-first sub-words with a "##" continuation prefix.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/tokenizers/tokenizer.h"

namespace shrink::worker {

// BasicTokenizer's switches, as in tokenizer_config.json.
struct WordPieceOptions {
  bool lower_case = true;
  // Strip accents: -1 = when lower-casing (HF's strip_accents=None), 0 = never, 1 = always.
  int strip_accents = -1;
  bool tokenize_chinese_chars = true;
  // Words longer than this many code points become [UNK].
  int max_chars_per_word = 100;
  SpecialTokenNames specials{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "", "", "[MASK]"};
};

// Parses vocab.txt (one token per line, id = line number - 1; "\r\n" accepted).
// `origin` names the file in errors, which give the line.
absl::StatusOr<std::vector<std::string>> ParseVocabTxt(std::string_view contents,
                                                       const std::string& origin = "vocab.txt");

// BERT's BasicTokenizer alone: the words WordPiece then splits.
std::vector<std::string> BertBasicTokenize(std::string_view text, const WordPieceOptions& options);

class WordPieceTokenizer final : public Tokenizer {
 public:
  // `vocab[i]` is the token of id i; the unk token must be in it.
  static absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> Create(std::vector<std::string> vocab,
                                                                    WordPieceOptions options);

  std::vector<std::string> Tokenize(std::string_view text) const override;
  std::vector<int64_t> Encode(std::string_view text) const override;
  std::string Decode(const std::vector<int64_t>& ids) const override;
  int64_t VocabSize() const override { return static_cast<int64_t>(vocab_.size()); }
  const SpecialTokens& Specials() const override { return specials_; }
  absl::Status Save(const std::string& dir) const override;
  std::string IdToToken(int64_t id) const override;
  int64_t TokenToId(std::string_view token) const override;

  const WordPieceOptions& options() const { return options_; }

 private:
  WordPieceTokenizer() = default;
  // Appends the WordPiece ids of one basic-tokenized word.
  void WordPieceIds(const std::string& word, std::vector<int64_t>* out) const;

  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int64_t> ids_;
  WordPieceOptions options_;
  SpecialTokens specials_;
  std::vector<std::string> special_strings_;  // split out of text before tokenizing
};

}  // namespace shrink::worker
