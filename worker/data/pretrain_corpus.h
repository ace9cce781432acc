// The general-English corpus `shrink pretrain` learns from, built from Debian packages (or a
// user's text files): GCIDE's dictionary entries, WordNet's glosses and the fortune cookies,
// cleaned, de-duplicated, shuffled for a seed and split into train and validation documents.
// No text of a task's validation or test split enters it. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/task_files.h"

namespace shrink::worker {

// The corpus `shrink pretrain` uses when --corpus is not given.
inline constexpr char kDefaultPretrainCorpus[] = "gcide,wordnet,fortunes";

// Where the built-in sources are read from (the Debian packages' paths by default; tests
// point them at small files).
struct CorpusPaths {
  std::string gcide_file = kDebianGcideFile;
  std::string wordnet_dir = kDebianWordnetDir;
  std::string fortunes_dir = kDebianFortunesDir;
};

// What one source gave.
struct CorpusSourceStats {
  std::string name;            // "gcide", "wordnet", "fortunes" or the file's path
  int64_t documents = 0;       // kept, after cleaning and de-duplication
  int64_t chars = 0;           // bytes of the kept documents
  int64_t duplicates = 0;      // dropped: the same text (up to case and white space) came earlier
  int64_t held_out = 0;        // dropped: in a task's validation or test split (SplitOf)
};

struct PretrainCorpus {
  std::string spec;                        // the sources as given, e.g. "gcide,wordnet,fortunes"
  std::vector<std::string> train;          // documents, shuffled
  std::vector<std::string> validation;     // held out for validation loss / accuracy
  std::vector<CorpusSourceStats> sources;  // in spec order
};

// Builds the corpus from `spec`, a comma-separated list of sources:
//   gcide     GCIDE's entries (Debian: dict-gcide), one document per sense paragraph, cleaned of
//             pronunciation, etymology and source tags; blocks quoting WordNet are dropped
//   wordnet   WordNet 3.0's glosses (Debian: wordnet-base)
//   fortunes  the fortune cookies (Debian: fortunes, fortunes-min)
//   PATH      a UTF-8 text file (optionally gzip-compressed), one document per paragraph
// WordNet glosses and fortunes are the built-in tasks' texts, so only those in the train split
// (SplitOf) are kept. Documents are de-duplicated across sources, shuffled with `seed`, and
// `validation_fraction` of them (at least one) held out. Errors name the source and, for a
// missing package, the package to install.
absl::StatusOr<PretrainCorpus> BuildPretrainCorpus(const std::string& spec, uint64_t seed,
                                                   double validation_fraction = 0.01,
                                                   const CorpusPaths& paths = CorpusPaths());

// The documents of GCIDE's dictionary text (the .dict.dz decompressed), as the gcide source
// cleans them (for tests).
std::vector<std::string> ParseGcide(std::string_view text);

}  // namespace shrink::worker
