// Fuzz target: the WordPiece tokenizer (worker/wordpiece) and its vocab.txt
// parser. Input: one flags byte, then vocab.txt, a NUL, and the text to
// tokenize. When the vocabulary is refused the text goes through a small
// built-in one, so the text side is fuzzed whatever the file side holds.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "worker/tokenizers/wordpiece.h"

namespace {

using shrink::worker::WordPieceOptions;
using shrink::worker::WordPieceTokenizer;

std::unique_ptr<WordPieceTokenizer> BuiltIn(const WordPieceOptions& options) {
  std::vector<std::string> vocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "un", "##aff",
                                    "##able", "a", "##b", "##c", "é", "##é", "中", ",", ".", "'", "s"};
  auto tok = WordPieceTokenizer::Create(std::move(vocab), options);
  if (!tok.ok()) __builtin_trap();
  return std::move(*tok);
}

void Exercise(const WordPieceTokenizer& tok, std::string_view text) {
  const std::vector<int64_t> ids = tok.Encode(text);
  const std::vector<std::string> tokens = tok.Tokenize(text);
  if (tokens.size() != ids.size()) __builtin_trap();
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= tok.VocabSize()) __builtin_trap();
    if (tok.IdToToken(ids[i]) != tokens[i]) __builtin_trap();
  }
  (void)tok.Decode(ids);
  (void)tok.Decode({-1, tok.VocabSize(), 0});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t nul = rest.find('\0');
  std::string_view vocab_txt = nul == std::string_view::npos ? rest : rest.substr(0, nul);
  std::string_view text = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);

  WordPieceOptions options;
  options.lower_case = flags & 1;
  options.strip_accents = (flags >> 1) % 3 - 1;
  options.tokenize_chinese_chars = flags & 8;
  options.max_chars_per_word = (flags & 16) ? 4 : 100;
  auto vocab = shrink::worker::ParseVocabTxt(vocab_txt);
  std::unique_ptr<WordPieceTokenizer> tok;
  if (vocab.ok()) {
    for (const std::string& t : *vocab) {
      if (t.empty() || t.find('\n') != std::string::npos) __builtin_trap();  // what the parser promises
    }
    // Specials absent from the file are dropped, as LoadTokenizer does.
    WordPieceOptions file_options = options;
    auto has = [&](const std::string& s) {
      for (const std::string& t : *vocab) if (t == s) return true;
      return false;
    };
    for (std::string* s : {&file_options.specials.pad, &file_options.specials.cls, &file_options.specials.sep,
                           &file_options.specials.mask}) {
      if (!has(*s)) s->clear();
    }
    auto created = WordPieceTokenizer::Create(std::move(*vocab), file_options);
    if (created.ok()) tok = std::move(*created);
  }
  if (!tok) tok = BuiltIn(options);
  Exercise(*tok, text);
  (void)shrink::worker::BertBasicTokenize(text, options);
  return 0;
}
