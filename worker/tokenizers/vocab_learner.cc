#include "worker/tokenizers/vocab_learner.h"

#include <algorithm>
#include <map>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "worker/tokenizers/byte_bpe.h"
#include "worker/tokenizers/normalize.h"
#include "worker/tokenizers/wordpiece.h"

namespace shrink::worker {
namespace {

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

// Merges every (a, b) in `word` left to right, non-overlapping, into `merged`.
bool MergeInWord(std::vector<int32_t>* word, int32_t a, int32_t b, int32_t merged) {
  bool changed = false;
  size_t out = 0;
  for (size_t i = 0; i < word->size();) {
    if (i + 1 < word->size() && (*word)[i] == a && (*word)[i + 1] == b) {
      (*word)[out++] = merged;
      i += 2;
      changed = true;
    } else {
      (*word)[out++] = (*word)[i++];
    }
  }
  word->resize(out);
  return changed;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> LearnBpeMerges(
    std::vector<std::pair<std::vector<std::string>, int64_t>> input, int64_t max_new_symbols, int64_t min_count,
    bool strip_continuation) {
  std::vector<std::string> symbols;
  std::unordered_map<std::string, int32_t> symbol_ids;
  auto intern = [&](const std::string& s) {
    auto [it, inserted] = symbol_ids.emplace(s, static_cast<int32_t>(symbols.size()));
    if (inserted) symbols.push_back(s);
    return it->second;
  };
  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> counts;
  for (auto& [syms, count] : input) {
    std::vector<int32_t> word;
    for (const std::string& s : syms) word.push_back(intern(s));
    words.push_back(std::move(word));
    counts.push_back(count);
  }
  input.clear();

  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> pair_words;
  for (size_t w = 0; w < words.size(); ++w) {
    for (size_t i = 0; i + 1 < words[w].size(); ++i) {
      const uint64_t key = PairKey(words[w][i], words[w][i + 1]);
      pair_count[key] += counts[w];
      pair_words[key].push_back(static_cast<int32_t>(w));
    }
  }
  struct Entry {
    int64_t count;
    int32_t a, b;
  };
  // Highest count first; ties: lexicographically smaller (left, right) first.
  auto worse = [&](const Entry& x, const Entry& y) {
    if (x.count != y.count) return x.count < y.count;
    const int c = symbols[x.a].compare(symbols[y.a]);
    if (c != 0) return c > 0;
    return symbols[x.b] > symbols[y.b];
  };
  std::priority_queue<Entry, std::vector<Entry>, decltype(worse)> heap(worse);
  for (const auto& [key, count] : pair_count) {
    heap.push(Entry{count, static_cast<int32_t>(key >> 32), static_cast<int32_t>(key & 0xffffffffu)});
  }

  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<int64_t> visited(words.size(), -1);
  int64_t new_symbols = 0;
  while (new_symbols < max_new_symbols && !heap.empty()) {
    const Entry top = heap.top();
    heap.pop();
    const uint64_t key = PairKey(top.a, top.b);
    auto current = pair_count.find(key);
    if (current == pair_count.end() || current->second != top.count) continue;  // stale
    if (top.count < min_count) break;
    const std::string& right = symbols[top.b];
    std::string name = symbols[top.a];
    name += strip_continuation && right.rfind("##", 0) == 0 ? right.substr(2) : right;
    if (!symbol_ids.count(name)) ++new_symbols;
    const int32_t merged = intern(name);
    merges.emplace_back(symbols[top.a], symbols[top.b]);

    std::vector<int32_t> affected = std::move(pair_words[key]);
    pair_words.erase(key);
    std::unordered_set<uint64_t> changed;
    const int64_t step = static_cast<int64_t>(merges.size());
    for (int32_t w : affected) {
      if (visited[w] == step) continue;
      visited[w] = step;
      std::vector<int32_t>& word = words[w];
      std::vector<int32_t> before = word;
      if (!MergeInWord(&word, top.a, top.b, merged)) continue;
      for (size_t i = 0; i + 1 < before.size(); ++i) {
        const uint64_t k = PairKey(before[i], before[i + 1]);
        pair_count[k] -= counts[w];
        changed.insert(k);
      }
      for (size_t i = 0; i + 1 < word.size(); ++i) {
        const uint64_t k = PairKey(word[i], word[i + 1]);
        pair_count[k] += counts[w];
        changed.insert(k);
        pair_words[k].push_back(w);
      }
    }
    for (uint64_t k : changed) {
      auto it = pair_count.find(k);
      if (it->second <= 0) {
        pair_count.erase(it);
        continue;
      }
      heap.push(Entry{it->second, static_cast<int32_t>(k >> 32), static_cast<int32_t>(k & 0xffffffffu)});
    }
  }
  return merges;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> BuildWordPieceTokenizer(const std::vector<std::string>& texts,
                                                                   int vocab_size, bool lower_case) {
  WordPieceOptions options;
  options.lower_case = lower_case;
  const std::vector<std::string> specials = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  if (vocab_size < static_cast<int>(specials.size()) + 2) {
    return absl::InvalidArgumentError(absl::StrCat("vocab_size ", vocab_size, " is too small for WordPiece"));
  }
  std::unordered_map<std::string, int64_t> word_counts;
  for (const std::string& text : texts) {
    for (std::string& word : BertBasicTokenize(text, options)) ++word_counts[std::move(word)];
  }
  if (word_counts.empty()) return absl::InvalidArgumentError("no words to build a WordPiece vocabulary from");

  // Words as character symbols: "c" first, "##c" after.
  std::vector<std::pair<std::vector<std::string>, int64_t>> words;
  std::map<std::string, int64_t> alphabet;
  for (const auto& [word, count] : word_counts) {
    std::vector<std::string> syms;
    size_t pos = 0;
    while (pos < word.size()) {
      const size_t start = pos;
      unicode::DecodeUtf8(word, &pos);
      syms.push_back((start == 0 ? "" : "##") + word.substr(start, pos - start));
    }
    if (static_cast<int>(syms.size()) > options.max_chars_per_word) continue;  // always [UNK]
    for (const std::string& s : syms) alphabet[s] += count;
    words.emplace_back(std::move(syms), count);
  }
  const int64_t room = vocab_size - static_cast<int64_t>(specials.size());
  std::vector<std::string> chars;
  if (static_cast<int64_t>(alphabet.size()) <= room) {
    for (const auto& [c, count] : alphabet) chars.push_back(c);
  } else {  // keep the most frequent characters, listed in code point order
    std::vector<std::pair<int64_t, std::string>> by_count;
    for (const auto& [c, count] : alphabet) by_count.emplace_back(-count, c);
    std::sort(by_count.begin(), by_count.end());
    for (int64_t i = 0; i < room; ++i) chars.push_back(by_count[i].second);
    std::sort(chars.begin(), chars.end());
    const std::unordered_set<std::string> kept(chars.begin(), chars.end());
    words.erase(std::remove_if(words.begin(), words.end(),
                               [&](const auto& w) {
                                 return std::any_of(w.first.begin(), w.first.end(),
                                                    [&](const std::string& s) { return !kept.count(s); });
                               }),
                words.end());
  }
  std::sort(words.begin(), words.end());  // deterministic input order
  std::vector<std::string> vocab = specials;
  vocab.insert(vocab.end(), chars.begin(), chars.end());
  std::unordered_set<std::string> in_vocab(vocab.begin(), vocab.end());
  const int64_t max_new = vocab_size - static_cast<int64_t>(vocab.size());
  for (const auto& [left, right] : LearnBpeMerges(std::move(words), max_new, 2, true)) {
    std::string piece = left + (right.rfind("##", 0) == 0 ? right.substr(2) : right);
    if (in_vocab.insert(piece).second) vocab.push_back(std::move(piece));
  }
  auto tok = WordPieceTokenizer::Create(std::move(vocab), options);
  if (!tok.ok()) return tok.status();
  return std::unique_ptr<Tokenizer>(std::move(*tok));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> BuildByteBpeTokenizer(const std::vector<std::string>& texts,
                                                                 int vocab_size, ByteBpeSpecials specials) {
  const bool roberta = specials == ByteBpeSpecials::kRoberta;
  const int reserved = roberta ? 5 : 1;  // special tokens
  if (vocab_size < 256 + reserved) {
    return absl::InvalidArgumentError(absl::StrCat("vocab_size ", vocab_size,
                                                   " is too small for byte-level BPE (at least ", 256 + reserved, ")"));
  }
  std::unordered_map<std::string, int64_t> piece_counts;
  for (const std::string& text : texts) {
    for (std::string_view piece : Gpt2PreTokenize(text)) ++piece_counts[std::string(piece)];
  }
  if (piece_counts.empty()) return absl::InvalidArgumentError("no text to build a byte-level BPE vocabulary from");
  const auto& byte_to_unicode = ByteToUnicode();
  std::vector<std::pair<std::vector<std::string>, int64_t>> words;
  for (const auto& [piece, count] : piece_counts) {
    std::vector<std::string> syms;
    for (unsigned char b : piece) syms.push_back(byte_to_unicode[b]);
    words.emplace_back(std::move(syms), count);
  }
  std::sort(words.begin(), words.end());
  // GPT-2's order of the byte symbols: by the code point they map to.
  std::vector<std::pair<char32_t, std::string>> bytes;
  for (const std::string& s : byte_to_unicode) {
    size_t pos = 0;
    bytes.emplace_back(unicode::DecodeUtf8(s, &pos), s);
  }
  std::sort(bytes.begin(), bytes.end());
  std::vector<std::pair<std::string, int64_t>> vocab;
  std::unordered_set<std::string> in_vocab;
  if (roberta) {
    for (const char* special : {"<s>", "<pad>", "</s>", "<unk>"}) vocab.emplace_back(special, static_cast<int64_t>(vocab.size()));
  }
  for (const auto& [cp, s] : bytes) {
    vocab.emplace_back(s, static_cast<int64_t>(vocab.size()));
    in_vocab.insert(s);
  }
  auto merges = LearnBpeMerges(std::move(words), vocab_size - 256 - reserved, 2, false);
  for (const auto& [left, right] : merges) {
    std::string piece = left + right;
    if (in_vocab.insert(piece).second) vocab.emplace_back(std::move(piece), static_cast<int64_t>(vocab.size()));
  }
  ByteBpeOptions options;
  if (roberta) {
    vocab.emplace_back("<mask>", static_cast<int64_t>(vocab.size()));
    options.specials = {"<pad>", "<unk>", "<s>", "</s>", "<s>", "</s>", "<mask>"};
    options.mask_lstrip = true;  // RobertaTokenizer's <mask> absorbs the space before it
  } else {
    vocab.emplace_back("<|endoftext|>", static_cast<int64_t>(vocab.size()));
    options.specials.unk = options.specials.bos = options.specials.eos = "<|endoftext|>";
  }
  auto tok = ByteBpeTokenizer::Create(vocab, std::move(merges), std::move(options));
  if (!tok.ok()) return tok.status();
  return std::unique_ptr<Tokenizer>(std::move(*tok));
}

}  // namespace shrink::worker
