// The wordnet-lexname task: a WordNet 3.0 synset's gloss -> its lexicographer file (45 classes
// such as noun.animal, verb.motion, adj.all), from the data.* files of Debian's wordnet-base.
// About 117k synsets, so a model is measured on ~11k test texts. Torch-free.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/data/text_data.h"

namespace shrink::worker {

// The built-in task's name.
inline constexpr char kWordnetLexnameTask[] = "wordnet-lexname";

// The data files the task reads, one per part of speech, as wordnet-base names them.
const std::vector<std::string>& WordnetDataFiles();

// The 45 lexicographer file names by their number in the data files (lexnames(5WN)).
const std::vector<std::string>& WordnetLexnames();

// One synset of a data file.
struct WordnetSynset {
  int lexname = 0;    // index into WordnetLexnames()
  std::string gloss;  // definition and examples, as written after "| "
};

// The synsets of one data file's contents (wndb(5WN): the licence lines starting with two
// spaces are skipped). `origin` names the file in errors, which give the line.
absl::StatusOr<std::vector<WordnetSynset>> ParseWordnetData(std::string_view contents, const std::string& origin);

// The task from `files` (WordnetDataFiles() names -> paths): texts are glosses, labels the
// lexicographer files present (label_names sorted). A gloss shared by synsets of different
// files is dropped, duplicates within one file kept once; splits follow SplitOf of the
// normalized gloss, so no gloss is in two splits. A missing file is NotFound naming it.
absl::StatusOr<TextDataset> LoadWordnetLexname(const std::map<std::string, std::string>& files);

}  // namespace shrink::worker
