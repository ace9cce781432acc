// Tokenizers loaded from the files Hugging Face ships with a model, torch-free:
// WordPiece from vocab.txt (BERT, DistilBERT) and byte-level BPE from vocab.json +
// merges.txt (GPT-2, RoBERTa). Both reproduce the slow Python tokenizers of
// `transformers` (BertTokenizer, GPT2Tokenizer/RobertaTokenizer).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace shrink::worker {

// Ids of the special tokens; -1 when the vocabulary has none.
struct SpecialTokens {
  int64_t pad = -1, unk = -1, cls = -1, sep = -1, bos = -1, eos = -1, mask = -1;
};

// The special tokens' strings ("" = none), as tokenizer_config.json names them.
struct SpecialTokenNames {
  std::string pad, unk, cls, sep, bos, eos, mask;
};

// Text <-> ids. Immutable after load; const methods are thread-safe.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Token strings as HF's tokenize() returns them; adds no special tokens, but a
  // special token written literally in the text stays one token.
  virtual std::vector<std::string> Tokenize(std::string_view text) const = 0;
  // Ids of Tokenize(text); no special tokens added.
  virtual std::vector<int64_t> Encode(std::string_view text) const = 0;
  // Text of `ids` (special tokens included as their strings; unknown ids skipped).
  virtual std::string Decode(const std::vector<int64_t>& ids) const = 0;
  // Size of the embedding table the ids index (largest id + 1).
  virtual int64_t VocabSize() const = 0;
  virtual const SpecialTokens& Specials() const = 0;
  // Writes the HF files (vocab + tokenizer_config.json) into `dir`, each atomically.
  virtual absl::Status Save(const std::string& dir) const = 0;
  // The token string of `id`, or "" when out of range.
  virtual std::string IdToToken(int64_t id) const = 0;
  // The id of `token`, or -1.
  virtual int64_t TokenToId(std::string_view token) const = 0;
};

// Loads from a HF model directory: vocab.json + merges.txt -> byte-level BPE
// (gpt2/roberta), else vocab.txt -> WordPiece (bert/distilbert). Honors
// tokenizer_config.json (do_lower_case, strip_accents, tokenize_chinese_chars,
// add_prefix_space, the *_token entries) when present; errors name the file and line.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& dir);

// The sequence a classifier reads: [CLS] text [SEP] (BERT) or <s> text </s>
// (RoBERTa), truncated to `max_len` ids in all, no padding. A tokenizer without
// cls/sep (GPT-2) gives the text's ids truncated to `max_len`.
std::vector<int64_t> EncodeForClassification(const Tokenizer& tok, std::string_view text, int max_len);

// The special tokens' ids: each name looked up with `lookup` (-1 when "" or absent).
template <typename Lookup>
SpecialTokens ResolveSpecials(const SpecialTokenNames& names, Lookup lookup) {
  auto id = [&](const std::string& name) -> int64_t { return name.empty() ? -1 : lookup(name); };
  SpecialTokens s;
  s.pad = id(names.pad), s.unk = id(names.unk), s.cls = id(names.cls), s.sep = id(names.sep);
  s.bos = id(names.bos), s.eos = id(names.eos), s.mask = id(names.mask);
  return s;
}

// Calls `on_text(segment)` for the text between special tokens and
// `on_special(token)` for each special token found literally in `text`
// (leftmost match, longest on ties).
void SplitOnSpecialTokens(std::string_view text, const std::vector<std::string>& specials,
                          const std::function<void(std::string_view)>& on_text,
                          const std::function<void(const std::string&)>& on_special);

}  // namespace shrink::worker
