// Text datasets, torch-free: the two built-in tasks made from Debian's fortune
// cookie corpus (topic classification over its largest categories, and language
// modelling over all of it) and users' own files. Splits are deterministic: each
// text's split is a hash of its normalized form, after de-duplication, so no
// text (up to case and white space) is in two splits.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/task_files.h"

namespace shrink::worker {

// Categories left out of the topic task: grab-bags of every topic, not topics.
inline const std::set<std::string>& GenericFortuneCategories() {
  static const std::set<std::string> kGeneric = {"cookie", "fortunes", "miscellaneous"};
  return kGeneric;
}

// One example; label -1 for language modelling.
struct TextExample {
  std::string text;
  int64_t label = -1;
};

struct TextDataset {
  std::string task;                      // "fortunes-topic", "fortunes-lm", "classification", "lm"
  std::vector<std::string> label_names;  // empty for language modelling
  bool integer_labels = false;           // the file's labels were class ids, not names
  std::vector<TextExample> train, validation, test;

  // True for a language-modelling dataset (no labels).
  bool IsLanguageModelling() const { return label_names.empty(); }
};

// `count` examples of `split` spread evenly over it (every size/count-th; all of it when
// count >= size). Splits are grouped by label (and by file for fortunes-lm), so taking
// the first examples for calibration or distillation would see only the first labels.
std::vector<const TextExample*> SpreadSample(const std::vector<TextExample>& split, size_t count);

// Topic classification: the `num_classes` categories with the most entries
// (GenericFortuneCategories() excluded; ties by name), labels in name order.
// Texts found in more than one category are dropped. `files` maps a category
// name to its file, as DebianFortunesFiles() or a worker's blob cache gives it.
absl::StatusOr<TextDataset> LoadFortunesTopic(const std::map<std::string, std::string>& files,
                                              int num_classes = 8);

// Language modelling over every entry of every file in `files`.
absl::StatusOr<TextDataset> LoadFortunesLm(const std::map<std::string, std::string>& files);

// A user's classification data: JSONL ({"text": .., "label": .., optional
// "split": "train"|"validation"|"test"}) when the file ends in .jsonl/.json or
// starts with '{', else TSV (text<TAB>label, optional "text<TAB>label" header).
// Labels may be strings (label_names sorted) or non-negative integers (class ids).
absl::StatusOr<TextDataset> LoadClassificationFile(const std::string& path);

// For each of `data`'s labels (label_names order), the class it is in a classifier with
// `num_labels` classes named `model_labels` (config.json's id2label in class order; may be
// empty). Integer labels are class ids. Names map to the model's own names, exactly or else
// ignoring case when that is unambiguous; a model without names (or with only Hugging Face's
// defaults LABEL_0, LABEL_1, ...) takes the task's names in sorted order. A name the model
// does not know, or more labels than classes, is InvalidArgument naming it.
absl::StatusOr<std::vector<int64_t>> ClassIdsForModel(const TextDataset& data,
                                                      const std::vector<std::string>& model_labels,
                                                      int64_t num_labels);

// A user's language-modelling text: paragraphs separated by blank lines.
absl::StatusOr<TextDataset> LoadPlainTextLm(const std::string& path);

// --- Parsers on bytes (for tests and fuzzing) ---

// The entries of a fortune file: text between lines consisting of "%", without
// leading blank lines and trailing white space; empty entries dropped.
std::vector<std::string> ParseFortunes(std::string_view contents);

// Classification data from `contents` as LoadClassificationFile reads it; `origin`
// names the file in errors, which give the line. `jsonl` picks the format.
absl::StatusOr<TextDataset> ParseClassification(std::string_view contents, bool jsonl,
                                                const std::string& origin);

// Paragraphs of `contents` (blank-line separated), split and de-duplicated.
absl::StatusOr<TextDataset> ParsePlainTextLm(std::string_view contents, const std::string& origin);

// The form two texts are compared in: white space runs collapsed, trimmed, ASCII lower case.
std::string NormalizeText(std::string_view text);

enum class TextSplit { kTrain, kValidation, kTest };

// The split of a normalized text: 80% train, 10% validation, 10% test by a
// 64-bit FNV-1a hash (stable across platforms and runs).
TextSplit SplitOf(std::string_view normalized);

// Appends `example` to the split of `data` that SplitOf(normalized) picks.
void AddToSplit(TextDataset* data, TextExample example, std::string_view normalized);

}  // namespace shrink::worker
