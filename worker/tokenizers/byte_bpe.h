// Byte-level BPE exactly as GPT-2 (and RoBERTa) do it: the text is split by
// GPT-2's pre-tokenization regex, each piece's UTF-8 bytes are mapped to
// printable characters (bytes_to_unicode), then merged pairwise by merge rank.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/tokenizers/tokenizer.h"

namespace shrink::worker {

// GPT-2's bytes_to_unicode(): the printable character (as UTF-8) standing for each byte.
const std::array<std::string, 256>& ByteToUnicode();

// The GPT-2 pre-tokenizer, `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
// by hand: pieces of `text` in order (they concatenate back to `text`). Letter and
// number classes as worker/unicode.h covers them; bytes that are not valid UTF-8
// count as "other" characters.
std::vector<std::string_view> Gpt2PreTokenize(std::string_view text);

// Parses vocab.json ({"token": id, ...}); ids must be distinct non-negative integers.
// Returns (token, id) sorted by id.
absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> ParseVocabJson(
    std::string_view contents, const std::string& origin = "vocab.json");

// Parses merges.txt: an optional "#version" first line, then "left right" per line
// in rank order (blank lines skipped). Errors name the line.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseMerges(
    std::string_view contents, const std::string& origin = "merges.txt");

// Options from tokenizer_config.json.
struct ByteBpeOptions {
  bool add_prefix_space = false;  // prepend " " to the text, as RoBERTa/GPT-2 allow
  bool mask_lstrip = false;       // the mask token absorbs the white space before it (RoBERTa)
  SpecialTokenNames specials;
};

class ByteBpeTokenizer final : public Tokenizer {
 public:
  // Every byte's symbol and every merge's result must be in `vocab`.
  static absl::StatusOr<std::unique_ptr<ByteBpeTokenizer>> Create(
      const std::vector<std::pair<std::string, int64_t>>& vocab,
      std::vector<std::pair<std::string, std::string>> merges, ByteBpeOptions options);

  std::vector<std::string> Tokenize(std::string_view text) const override;
  std::vector<int64_t> Encode(std::string_view text) const override;
  // Concatenates the tokens and maps their characters back to bytes (no UTF-8
  // repair: Decode(Encode(s)) == s for any bytes s).
  std::string Decode(const std::vector<int64_t>& ids) const override;
  int64_t VocabSize() const override { return static_cast<int64_t>(id_to_token_.size()); }
  const SpecialTokens& Specials() const override { return specials_; }
  absl::Status Save(const std::string& dir) const override;
  std::string IdToToken(int64_t id) const override;
  int64_t TokenToId(std::string_view token) const override;

  const std::vector<std::pair<std::string, std::string>>& merges() const { return merges_; }
  const ByteBpeOptions& options() const { return options_; }

 private:
  struct Merge {
    int32_t rank;
    int32_t result;  // symbol
  };
  ByteBpeTokenizer() = default;
  int32_t Intern(const std::string& symbol);
  // Appends the vocabulary ids of one pre-tokenized piece.
  void EncodePiece(std::string_view piece, std::vector<int64_t>* out) const;
  void EncodeText(std::string_view text, std::vector<int64_t>* out) const;

  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, int64_t> token_to_id_;
  std::vector<std::pair<std::string, std::string>> merges_;
  std::vector<std::string> symbols_;
  std::unordered_map<std::string, int32_t> symbol_ids_;
  std::vector<int64_t> symbol_vocab_id_;
  std::array<int32_t, 256> byte_symbol_{};
  std::unordered_map<uint64_t, Merge> merge_of_pair_;
  std::unordered_map<char32_t, uint8_t> unicode_to_byte_;
  ByteBpeOptions options_;
  SpecialTokens specials_;
  std::vector<std::string> special_strings_;
};

}  // namespace shrink::worker
