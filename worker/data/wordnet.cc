#include "worker/data/wordnet.h"

#include <algorithm>
#include <unordered_map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/status.h"
#include "common/task_files.h"

namespace shrink::worker {

const std::vector<std::string>& WordnetDataFiles() {
  static const std::vector<std::string> kFiles = {"data.adj", "data.adv", "data.noun", "data.verb"};
  return kFiles;
}

const std::vector<std::string>& WordnetLexnames() {
  static const std::vector<std::string> kNames = {
      "adj.all",          "adj.pert",           "adv.all",          "noun.Tops",       "noun.act",
      "noun.animal",      "noun.artifact",      "noun.attribute",   "noun.body",       "noun.cognition",
      "noun.communication", "noun.event",       "noun.feeling",     "noun.food",       "noun.group",
      "noun.location",    "noun.motive",        "noun.object",      "noun.person",     "noun.phenomenon",
      "noun.plant",       "noun.possession",    "noun.process",     "noun.quantity",   "noun.relation",
      "noun.shape",       "noun.state",         "noun.substance",   "noun.time",       "verb.body",
      "verb.change",      "verb.cognition",     "verb.communication", "verb.competition", "verb.consumption",
      "verb.contact",     "verb.creation",      "verb.emotion",     "verb.motion",     "verb.perception",
      "verb.possession",  "verb.social",        "verb.stative",     "verb.weather",    "adj.ppl"};
  return kNames;
}

absl::StatusOr<std::vector<WordnetSynset>> ParseWordnetData(std::string_view contents, const std::string& origin) {
  std::vector<WordnetSynset> synsets;
  int64_t line_number = 0;
  for (absl::string_view line : absl::StrSplit(absl::string_view(contents.data(), contents.size()), '\n')) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || absl::StartsWith(line, "  ")) continue;  // the licence header
    auto fail = [&](const std::string& what) {
      return absl::InvalidArgumentError(absl::StrCat(origin, " line ", line_number, ": ", what));
    };
    // synset_offset lex_filenum ss_type w_cnt word lex_id ... p_cnt pointers ... | gloss
    const size_t bar = line.find(" | ");
    if (bar == absl::string_view::npos) return fail("no gloss (\" | \" missing)");
    std::vector<absl::string_view> fields = absl::StrSplit(line.substr(0, bar), ' ', absl::SkipEmpty());
    int lexname = -1;
    if (fields.size() < 4 || fields[0].size() != 8 || !std::all_of(fields[0].begin(), fields[0].end(), absl::ascii_isdigit) ||
        fields[1].size() != 2 || !absl::SimpleAtoi(fields[1], &lexname) || fields[2].size() != 1 ||
        absl::string_view("nvasr").find(fields[2][0]) == absl::string_view::npos) {
      return fail("not a synset line (offset, lexicographer file, part of speech, ...)");
    }
    if (lexname < 0 || lexname >= static_cast<int>(WordnetLexnames().size())) {
      return fail(absl::StrCat("lexicographer file ", fields[1], " is not one of WordNet's 0..",
                               WordnetLexnames().size() - 1));
    }
    std::string gloss(absl::StripAsciiWhitespace(line.substr(bar + 3)));
    if (gloss.empty()) return fail("empty gloss");
    synsets.push_back({lexname, std::move(gloss)});
  }
  return synsets;
}

absl::StatusOr<TextDataset> LoadWordnetLexname(const std::map<std::string, std::string>& files) {
  // Each normalized gloss's first text and label; -1 once two files disagree.
  std::unordered_map<std::string, std::pair<std::string, int>> by_gloss;
  std::vector<std::string> order;  // normalized glosses in file order, for a stable dataset
  for (const std::string& name : WordnetDataFiles()) {
    auto it = files.find(name);
    if (it == files.end()) {
      return absl::NotFoundError(absl::StrCat(kWordnetLexnameTask, " needs WordNet's ", name, " (install the Debian ",
                                              "package wordnet-base; it lives in ", kDebianWordnetDir, ")"));
    }
    SHRINK_ASSIGN_OR_RETURN(std::string contents, ReadFile(it->second));
    SHRINK_ASSIGN_OR_RETURN(std::vector<WordnetSynset> synsets, ParseWordnetData(contents, it->second));
    for (WordnetSynset& synset : synsets) {
      std::string norm = NormalizeText(synset.gloss);
      auto [entry, inserted] = by_gloss.try_emplace(norm, std::move(synset.gloss), synset.lexname);
      if (inserted) {
        order.push_back(std::move(norm));
      } else if (entry->second.second != synset.lexname) {
        entry->second.second = -1;
      }
    }
  }
  std::vector<bool> present(WordnetLexnames().size(), false);
  for (const auto& [norm, entry] : by_gloss) {
    if (entry.second >= 0) present[entry.second] = true;
  }
  TextDataset data;
  data.task = kWordnetLexnameTask;
  for (size_t i = 0; i < present.size(); ++i) {
    if (present[i]) data.label_names.push_back(WordnetLexnames()[i]);
  }
  std::sort(data.label_names.begin(), data.label_names.end());
  std::vector<int64_t> label_of(WordnetLexnames().size(), -1);
  for (size_t label = 0; label < data.label_names.size(); ++label) {
    const auto at = std::find(WordnetLexnames().begin(), WordnetLexnames().end(), data.label_names[label]);
    label_of[at - WordnetLexnames().begin()] = static_cast<int64_t>(label);
  }
  for (const std::string& norm : order) {
    auto& [text, lexname] = by_gloss.at(norm);
    if (lexname < 0) continue;
    AddToSplit(&data, TextExample{std::move(text), label_of[lexname]}, norm);
  }
  if (data.label_names.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(kWordnetLexnameTask, ": the WordNet files hold fewer than two ",
                                                   "lexicographer files"));
  }
  return data;
}

}  // namespace shrink::worker
