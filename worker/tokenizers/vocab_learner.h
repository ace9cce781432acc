// Vocabulary learning for the models trained here: a WordPiece vocabulary for
// the encoder and a byte-level BPE one for the decoder, from the training texts.
// Both are deterministic (ties broken lexicographically) and single-threaded.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/tokenizers/tokenizer.h"

namespace shrink::worker {

// A WordPiece vocabulary of at most `vocab_size` tokens: [PAD] [UNK] [CLS] [SEP]
// [MASK] (ids 0-4), then every character seen (word-initial "c" and continuation
// "##c" forms, in code point order; only the most frequent if they do not fit),
// then sub-words learned by BPE-style merging of the most frequent adjacent pair
// within BasicTokenizer words (a merge of "##a" and "##b" gives "##ab"), until
// the vocabulary is full or no pair occurs twice.
absl::StatusOr<std::unique_ptr<Tokenizer>> BuildWordPieceTokenizer(const std::vector<std::string>& texts,
                                                                   int vocab_size, bool lower_case);

// Whose special tokens a byte-level BPE vocabulary gets.
enum class ByteBpeSpecials {
  kGpt2,     // <|endoftext|> last: bos, eos and unk
  kRoberta,  // <s> <pad> </s> <unk> first (ids 0-3), <mask> last, as RoBERTa's vocabulary has them
};

// A byte-level BPE vocabulary of at most `vocab_size` tokens: the 256 byte symbols
// (GPT-2's order), merges learned from the GPT-2 pre-tokenized words (most frequent pair
// first, until full or no pair occurs twice), and the special tokens of `specials`.
absl::StatusOr<std::unique_ptr<Tokenizer>> BuildByteBpeTokenizer(const std::vector<std::string>& texts,
                                                                 int vocab_size,
                                                                 ByteBpeSpecials specials = ByteBpeSpecials::kGpt2);

// The BPE learner both use. `words` are symbol sequences with counts; each step
// merges the most frequent adjacent pair (ties: smaller left, then right string)
// everywhere, left to right. Stops after `max_new_symbols` distinct new symbol
// strings or when the best pair occurs fewer than `min_count` times. A merge's
// symbol is left + right, with a leading "##" removed from right when
// `strip_continuation` (WordPiece). Returns the merges in order.
std::vector<std::pair<std::string, std::string>> LearnBpeMerges(
    std::vector<std::pair<std::vector<std::string>, int64_t>> words, int64_t max_new_symbols,
    int64_t min_count, bool strip_continuation);

}  // namespace shrink::worker
