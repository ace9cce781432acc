// Corpus building for pretraining: each source read and cleaned, then one pass that drops
// repeats and held-out task texts, a seeded shuffle and the validation hold-out.
#include "worker/data/pretrain_corpus.h"

#include <algorithm>
#include <random>
#include <unordered_set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/files.h"
#include "common/status.h"
#include "worker/data/gzip.h"
#include "worker/data/text_data.h"
#include "worker/data/wordnet.h"

namespace shrink::worker {
namespace {

// Shortest GCIDE paragraph kept: shorter ones are cross-references ("Syn: See {Renounce}.").
constexpr size_t kMinGcideChars = 40;
// Longest span removed as a pronunciation (\Ab*jure"\) or a bracketed tag / etymology.
constexpr size_t kMaxPronunciation = 80;
constexpr size_t kMaxBracket = 600;

// One GCIDE paragraph without pronunciations, brackets (source tags such as [1913 Webster],
// usage labels, etymologies) and cross-reference braces, white space collapsed.
std::string CleanGcideBlock(std::string_view block) {
  std::string out;
  for (size_t i = 0; i < block.size(); ++i) {
    const char c = block[i];
    if (c == '\\' || c == '[') {
      const char close = c == '\\' ? '\\' : ']';
      const size_t limit = c == '\\' ? kMaxPronunciation : kMaxBracket;
      const size_t end = block.find(close, i + 1);
      const bool one_line = c == '[' || block.substr(i, end - i).find('\n') == std::string_view::npos;
      if (end != std::string_view::npos && end - i <= limit && one_line) {
        i = end;
        continue;
      }
    }
    if (c == '{' || c == '}' || c == '\\') continue;
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      if (!out.empty() && out.back() != ' ') out.push_back(' ');
      continue;
    }
    // "Abjure \Ab*jure"\, v. t." leaves "Abjure , v. t.": no space before punctuation.
    if ((c == ',' || c == '.' || c == ';' || c == ':') && !out.empty() && out.back() == ' ') out.pop_back();
    out.push_back(c);
  }
  return std::string(absl::StripAsciiWhitespace(out));
}

absl::StatusOr<std::vector<std::string>> ReadGcide(const std::string& path) {
  if (!PathExists(path)) {
    return absl::NotFoundError(absl::StrCat("corpus source gcide needs ", path, " (install the Debian package dict-gcide)"));
  }
  SHRINK_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  if (IsGzip(bytes)) {
    SHRINK_ASSIGN_OR_RETURN(bytes, Gunzip(bytes, path));
  }
  std::vector<std::string> documents = ParseGcide(bytes);
  if (documents.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no dictionary entries found"));
  return documents;
}

absl::StatusOr<std::vector<std::string>> ReadWordnetGlosses(const std::string& dir) {
  std::vector<std::string> glosses;
  for (const std::string& name : WordnetDataFiles()) {
    const std::string path = absl::StrCat(dir, "/", name);
    if (!PathExists(path)) {
      return absl::NotFoundError(absl::StrCat("corpus source wordnet needs ", path, " (install the Debian package wordnet-base)"));
    }
    SHRINK_ASSIGN_OR_RETURN(std::string contents, ReadFile(path));
    SHRINK_ASSIGN_OR_RETURN(std::vector<WordnetSynset> synsets, ParseWordnetData(contents, path));
    for (WordnetSynset& s : synsets) glosses.push_back(std::move(s.gloss));
  }
  return glosses;
}

absl::StatusOr<std::vector<std::string>> ReadFortunes(const std::string& dir) {
  const std::map<std::string, std::string> files = DebianFortunesFiles(dir);
  if (files.empty()) {
    return absl::NotFoundError(absl::StrCat("corpus source fortunes needs the fortune files in ", dir,
                                            " (install the Debian packages fortunes and fortunes-min)"));
  }
  std::vector<std::string> entries;
  for (const auto& [name, path] : files) {
    SHRINK_ASSIGN_OR_RETURN(std::string contents, ReadFile(path));
    for (std::string& entry : ParseFortunes(contents)) entries.push_back(std::move(entry));
  }
  return entries;
}

absl::StatusOr<std::vector<std::string>> ReadTextFile(const std::string& path) {
  if (!PathExists(path)) {
    return absl::NotFoundError(absl::StrCat("corpus source ", path,
                                            " is neither gcide, wordnet, fortunes nor an existing text file"));
  }
  SHRINK_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  if (IsGzip(bytes)) {
    SHRINK_ASSIGN_OR_RETURN(bytes, Gunzip(bytes, path));
  }
  SHRINK_ASSIGN_OR_RETURN(TextDataset paragraphs, ParsePlainTextLm(bytes, path));
  std::vector<std::string> documents;
  for (const auto* split : {&paragraphs.train, &paragraphs.validation, &paragraphs.test}) {
    for (const TextExample& e : *split) documents.push_back(e.text);
  }
  return documents;
}

}  // namespace

std::vector<std::string> ParseGcide(std::string_view text) {
  // The dictionary proper starts at the entry for the letter A; before it, dictd's headers.
  const size_t start = text.find("\nA \\A\\");
  if (start != std::string_view::npos) text.remove_prefix(start + 1);
  std::vector<std::string> documents;
  std::string block;
  auto flush = [&] {
    if (!block.empty() && block.find("[WordNet") == std::string::npos) {  // WordNet's glosses are a task's texts
      std::string clean = CleanGcideBlock(block);
      if (clean.size() >= kMinGcideChars && !absl::StartsWith(clean, "GCIDE") && !absl::StartsWith(clean, "*")) {
        documents.push_back(std::move(clean));
      }
    }
    block.clear();
  };
  for (size_t begin = 0; begin < text.size();) {
    size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(begin, end - begin);
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) {
      flush();
    } else {
      block.append(line.data(), line.size());
      block.push_back('\n');
    }
    begin = end + 1;
  }
  flush();
  return documents;
}

absl::StatusOr<PretrainCorpus> BuildPretrainCorpus(const std::string& spec, uint64_t seed, double validation_fraction,
                                                   const CorpusPaths& paths) {
  if (!(validation_fraction > 0 && validation_fraction < 0.5)) {
    return absl::InvalidArgumentError(absl::StrCat("validation fraction ", validation_fraction, " is not in (0, 0.5)"));
  }
  PretrainCorpus corpus;
  corpus.spec = spec;
  std::vector<std::string> documents;
  std::unordered_set<std::string> seen;
  for (absl::string_view part : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    const std::string name(absl::StripAsciiWhitespace(part));
    for (const auto& earlier : corpus.sources) {
      if (earlier.name == name) return absl::InvalidArgumentError(absl::StrCat("corpus source ", name, " is named twice"));
    }
    absl::StatusOr<std::vector<std::string>> texts;
    const bool task_texts = name == "wordnet" || name == "fortunes";
    if (name == "gcide") {
      texts = ReadGcide(paths.gcide_file);
    } else if (name == "wordnet") {
      texts = ReadWordnetGlosses(paths.wordnet_dir);
    } else if (name == "fortunes") {
      texts = ReadFortunes(paths.fortunes_dir);
    } else {
      texts = ReadTextFile(name);
    }
    if (!texts.ok()) return texts.status();
    CorpusSourceStats stats;
    stats.name = name;
    for (std::string& text : *texts) {
      std::string norm = NormalizeText(text);
      if (norm.empty()) continue;
      // The built-in tasks split their texts by SplitOf; only their train split may be seen.
      if (task_texts && SplitOf(norm) != TextSplit::kTrain) {
        ++stats.held_out;
        continue;
      }
      if (!seen.insert(std::move(norm)).second) {
        ++stats.duplicates;
        continue;
      }
      ++stats.documents;
      stats.chars += static_cast<int64_t>(text.size());
      documents.push_back(std::move(text));
    }
    corpus.sources.push_back(stats);
  }
  if (corpus.sources.empty()) return absl::InvalidArgumentError("the corpus names no source (e.g. gcide,wordnet,fortunes)");
  if (documents.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat("corpus ", spec, " has ", documents.size(),
                                                   " document(s); at least 2 are needed (train and validation)"));
  }
  // Fisher-Yates with the engine's raw output: the same order on every platform.
  std::mt19937_64 rng(seed);
  for (size_t i = documents.size(); i > 1; --i) std::swap(documents[i - 1], documents[rng() % i]);
  const size_t held = std::max<size_t>(1, static_cast<size_t>(validation_fraction * static_cast<double>(documents.size())));
  corpus.validation.assign(std::make_move_iterator(documents.begin()), std::make_move_iterator(documents.begin() + held));
  corpus.train.assign(std::make_move_iterator(documents.begin() + held), std::make_move_iterator(documents.end()));
  return corpus;
}

}  // namespace shrink::worker
