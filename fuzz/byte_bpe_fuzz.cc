// Fuzz target: the byte-level BPE tokenizer (worker/byte_bpe) and its file
// parsers. Input: one flags byte, then vocab.json, a NUL, merges.txt, a NUL,
// and the text. The files are tried as given; when refused (fuzzed files rarely
// hold the 256 byte symbols), the parsed merges are tried over a vocabulary
// made of the byte symbols and the merges' results; failing that, a built-in
// tokenizer takes the text. Decode(Encode(text)) must give the text back.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "worker/tokenizers/byte_bpe.h"

namespace {

using shrink::worker::ByteBpeOptions;
using shrink::worker::ByteBpeTokenizer;
using Vocab = std::vector<std::pair<std::string, int64_t>>;
using Merges = std::vector<std::pair<std::string, std::string>>;

// The 256 byte symbols, each merge's result, and <|endoftext|>.
Vocab ByteVocab(const Merges& merges) {
  Vocab vocab;
  std::set<std::string> seen;
  auto add = [&](const std::string& t) {
    if (seen.insert(t).second) vocab.emplace_back(t, static_cast<int64_t>(vocab.size()));
  };
  for (const std::string& s : shrink::worker::ByteToUnicode()) add(s);
  for (const auto& [l, r] : merges) add(l + r);
  add("<|endoftext|>");
  return vocab;
}

std::unique_ptr<ByteBpeTokenizer> BuiltIn(const ByteBpeOptions& options) {
  const auto& b = shrink::worker::ByteToUnicode();
  const std::string space = b[' '];
  Merges merges = {{space, "t"}, {"h", "e"}, {space + "t", "he"}, {"l", "l"}, {"ll", "o"}, {"Ã", "©"}};
  auto tok = ByteBpeTokenizer::Create(ByteVocab(merges), merges, options);
  if (!tok.ok()) __builtin_trap();
  return std::move(*tok);
}

void Exercise(const ByteBpeTokenizer& tok, std::string_view text, bool exact) {
  const std::vector<int64_t> ids = tok.Encode(text);
  const std::vector<std::string> tokens = tok.Tokenize(text);
  if (tokens.size() != ids.size()) __builtin_trap();
  for (int64_t id : ids) {
    if (id < 0 || id >= tok.VocabSize()) __builtin_trap();
  }
  const std::string back = tok.Decode(ids);
  if (exact && back != text) __builtin_trap();  // documented: Decode(Encode(s)) == s for any bytes
  (void)tok.Decode({-1, tok.VocabSize(), 0});
  std::string joined;
  for (std::string_view piece : shrink::worker::Gpt2PreTokenize(text)) joined.append(piece);
  if (joined != text) __builtin_trap();  // the pieces concatenate back to the text
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  size_t nul1 = rest.find('\0');
  std::string_view vocab_json = rest.substr(0, nul1);
  std::string_view merges_txt, text;
  if (nul1 != std::string_view::npos) {
    std::string_view tail = rest.substr(nul1 + 1);
    size_t nul2 = tail.find('\0');
    merges_txt = tail.substr(0, nul2);
    if (nul2 != std::string_view::npos) text = tail.substr(nul2 + 1);
  }
  ByteBpeOptions options;
  options.add_prefix_space = flags & 1;
  options.mask_lstrip = flags & 2;
  // add_prefix_space and the mask's lstrip change the text; the round trip is exact without them.
  const bool exact = !options.add_prefix_space && !options.mask_lstrip;

  std::unique_ptr<ByteBpeTokenizer> tok;
  auto vocab = shrink::worker::ParseVocabJson(vocab_json);
  auto merges = shrink::worker::ParseMerges(merges_txt);
  if (vocab.ok()) {
    for (size_t i = 1; i < vocab->size(); ++i) {
      if ((*vocab)[i].second <= (*vocab)[i - 1].second) __builtin_trap();  // sorted, distinct ids
    }
  }
  if (vocab.ok() && merges.ok()) {
    auto created = ByteBpeTokenizer::Create(*vocab, *merges, options);
    if (created.ok()) tok = std::move(*created);
  }
  if (!tok && merges.ok() && merges->size() <= 4096) {
    ByteBpeOptions with_eot = options;
    with_eot.specials.eos = "<|endoftext|>";
    auto created = ByteBpeTokenizer::Create(ByteVocab(*merges), *merges, with_eot);
    if (created.ok()) tok = std::move(*created);
  }
  if (!tok) tok = BuiltIn(options);
  Exercise(*tok, text, exact);
  return 0;
}
