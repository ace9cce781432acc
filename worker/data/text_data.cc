#include "worker/data/text_data.h"


#include <algorithm>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace shrink::worker {
namespace {

// Calls `fn(line, line_number)` for each line of `contents` ("\r\n" accepted).
template <typename Fn>
absl::Status ForEachLine(std::string_view contents, Fn fn) {
  size_t pos = 0;
  int64_t number = 0;
  while (pos < contents.size()) {
    ++number;
    size_t end = contents.find('\n', pos);
    if (end == std::string_view::npos) end = contents.size();
    std::string_view line = contents.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    SHRINK_RETURN_IF_ERROR(fn(line, number));
    pos = end + 1;
  }
  return absl::OkStatus();
}

bool IsBlank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return absl::ascii_isspace(c); });
}

// Drops leading blank lines and trailing white space.
std::string TrimEntry(std::string_view text) {
  while (!text.empty()) {
    size_t end = text.find('\n');
    if (end == std::string_view::npos || !IsBlank(text.substr(0, end))) break;
    text.remove_prefix(end + 1);
  }
  while (!text.empty() && absl::ascii_isspace(text.back())) text.remove_suffix(1);
  if (IsBlank(text)) return "";
  return std::string(text);
}


absl::StatusOr<std::vector<std::string>> ReadFortuneFile(const std::string& name, const std::string& path) {
  auto contents = ReadFile(path);
  if (!contents.ok()) {
    return absl::NotFoundError(absl::StrCat("fortune file '", name, "': ", contents.status().message()));
  }
  return ParseFortunes(*contents);
}

absl::Status NeedFiles(const std::map<std::string, std::string>& files) {
  if (files.empty()) {
    return absl::NotFoundError(absl::StrCat("no fortune files (install the Debian packages fortunes and ",
                                            "fortunes-min; they live in ", kDebianFortunesDir, ")"));
  }
  return absl::OkStatus();
}

// A raw label before the label set is known.
struct RawLabel {
  bool is_int = false;
  int64_t value = 0;
  std::string name;
  int64_t line = 0;
};

RawLabel LabelFromString(std::string name, int64_t line) {
  RawLabel label;
  label.line = line;
  int64_t value = 0;
  if (!name.empty() && absl::SimpleAtoi(name, &value)) {
    label.is_int = true;
    label.value = value;
  }
  label.name = std::move(name);
  return label;
}

}  // namespace

std::vector<std::string> ParseFortunes(std::string_view contents) {
  std::vector<std::string> entries;
  size_t start = 0;
  auto flush = [&](size_t end) {
    std::string entry = TrimEntry(contents.substr(start, end - start));
    if (!entry.empty()) entries.push_back(std::move(entry));
  };
  size_t pos = 0;
  while (pos < contents.size()) {
    size_t end = contents.find('\n', pos);
    if (end == std::string_view::npos) end = contents.size();
    std::string_view line = contents.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line == "%") {
      flush(pos);
      start = end + 1;
    }
    pos = end + 1;
  }
  if (start < contents.size()) flush(contents.size());
  return entries;
}

std::string NormalizeText(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (char c : text) {
    if (absl::ascii_isspace(c)) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(absl::ascii_tolower(c));
  }
  return out;
}

TextSplit SplitOf(std::string_view normalized) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (unsigned char c : normalized) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  // splitmix64's finalizer, so that the low digits depend on every byte.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  const uint64_t bucket = h % 10;
  if (bucket < 8) return TextSplit::kTrain;
  return bucket == 8 ? TextSplit::kValidation : TextSplit::kTest;
}

void AddToSplit(TextDataset* data, TextExample example, std::string_view normalized) {
  switch (SplitOf(normalized)) {
    case TextSplit::kTrain:
      data->train.push_back(std::move(example));
      break;
    case TextSplit::kValidation:
      data->validation.push_back(std::move(example));
      break;
    case TextSplit::kTest:
      data->test.push_back(std::move(example));
      break;
  }
}

std::vector<const TextExample*> SpreadSample(const std::vector<TextExample>& split, size_t count) {
  count = std::min(count, split.size());
  std::vector<const TextExample*> sample;
  sample.reserve(count);
  // Index i * size / count: strictly increasing, first 0, evenly spaced over the split.
  for (size_t i = 0; i < count; ++i) sample.push_back(&split[i * split.size() / count]);
  return sample;
}

absl::StatusOr<TextDataset> LoadFortunesTopic(const std::map<std::string, std::string>& files, int num_classes) {
  SHRINK_RETURN_IF_ERROR(NeedFiles(files));
  if (num_classes < 2) return absl::InvalidArgumentError("fortunes-topic needs at least 2 classes");
  // Unique texts per topical category, and in how many categories each text occurs.
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> entries;  // name -> (text, norm)
  std::unordered_map<std::string, int> categories_of;
  for (const auto& [name, path] : files) {
    if (GenericFortuneCategories().count(name)) continue;
    SHRINK_ASSIGN_OR_RETURN(std::vector<std::string> texts, ReadFortuneFile(name, path));
    std::unordered_set<std::string> seen;
    for (std::string& text : texts) {
      std::string norm = NormalizeText(text);
      if (!seen.insert(norm).second) continue;
      ++categories_of[norm];
      entries[name].emplace_back(std::move(text), std::move(norm));
    }
  }
  std::vector<std::pair<int64_t, std::string>> sizes;  // (-count, name)
  for (auto& [name, list] : entries) {
    list.erase(std::remove_if(list.begin(), list.end(),
                              [&](const auto& e) { return categories_of[e.second] > 1; }),
               list.end());
    sizes.emplace_back(-static_cast<int64_t>(list.size()), name);
  }
  if (static_cast<int>(sizes.size()) < num_classes) {
    return absl::InvalidArgumentError(absl::StrCat("fortunes-topic wants ", num_classes, " categories but only ",
                                                   sizes.size(), " topical fortune files were given"));
  }
  std::sort(sizes.begin(), sizes.end());
  TextDataset data;
  data.task = "fortunes-topic";
  for (int i = 0; i < num_classes; ++i) data.label_names.push_back(sizes[i].second);
  std::sort(data.label_names.begin(), data.label_names.end());
  for (size_t label = 0; label < data.label_names.size(); ++label) {
    for (auto& [text, norm] : entries[data.label_names[label]]) {
      AddToSplit(&data, TextExample{std::move(text), static_cast<int64_t>(label)}, norm);
    }
  }
  return data;
}

absl::StatusOr<TextDataset> LoadFortunesLm(const std::map<std::string, std::string>& files) {
  SHRINK_RETURN_IF_ERROR(NeedFiles(files));
  TextDataset data;
  data.task = "fortunes-lm";
  std::unordered_set<std::string> seen;
  for (const auto& [name, path] : files) {
    SHRINK_ASSIGN_OR_RETURN(std::vector<std::string> texts, ReadFortuneFile(name, path));
    for (std::string& text : texts) {
      std::string norm = NormalizeText(text);
      if (!seen.insert(norm).second) continue;
      AddToSplit(&data, TextExample{std::move(text), -1}, norm);
    }
  }
  return data;
}

absl::StatusOr<TextDataset> ParseClassification(std::string_view contents, bool jsonl, const std::string& origin) {
  struct Row {
    std::string text;
    RawLabel label;
    int split = -1;  // -1: by hash, else a TextSplit
  };
  std::vector<Row> rows;
  bool first = true;
  SHRINK_RETURN_IF_ERROR(ForEachLine(contents, [&](std::string_view line, int64_t number) -> absl::Status {
    if (IsBlank(line)) return absl::OkStatus();
    const std::string where = absl::StrCat(origin, " line ", number, ": ");
    Row row;
    if (jsonl) {
      nlohmann::json json;
      try {
        json = nlohmann::json::parse(line.begin(), line.end());
      } catch (const nlohmann::json::exception& e) {
        return absl::InvalidArgumentError(absl::StrCat(where, "invalid JSON: ", e.what()));
      }
      if (!json.is_object()) return absl::InvalidArgumentError(where + "expected a JSON object");
      auto text = json.find("text");
      if (text == json.end() || !text->is_string()) {
        return absl::InvalidArgumentError(where + "\"text\" must be a string");
      }
      row.text = text->get<std::string>();
      auto label = json.find("label");
      if (label != json.end() && label->is_number_integer()) {
        row.label = RawLabel{true, label->get<int64_t>(), std::to_string(label->get<int64_t>()), number};
      } else if (label != json.end() && label->is_string()) {
        row.label = RawLabel{false, 0, label->get<std::string>(), number};
      } else {
        return absl::InvalidArgumentError(where + "\"label\" must be a string or an integer");
      }
      auto split = json.find("split");
      if (split != json.end()) {
        const std::string s = split->is_string() ? split->get<std::string>() : "";
        if (s == "train") {
          row.split = static_cast<int>(TextSplit::kTrain);
        } else if (s == "validation" || s == "valid" || s == "dev") {
          row.split = static_cast<int>(TextSplit::kValidation);
        } else if (s == "test") {
          row.split = static_cast<int>(TextSplit::kTest);
        } else {
          return absl::InvalidArgumentError(where + "\"split\" must be \"train\", \"validation\" or \"test\"");
        }
      }
    } else {
      const size_t tab = line.rfind('\t');
      if (tab == std::string_view::npos) return absl::InvalidArgumentError(where + "expected text<TAB>label");
      std::string_view label_text = line.substr(tab + 1);
      while (!label_text.empty() && absl::ascii_isspace(label_text.front())) label_text.remove_prefix(1);
      while (!label_text.empty() && absl::ascii_isspace(label_text.back())) label_text.remove_suffix(1);
      std::string label(label_text);
      row.text = std::string(line.substr(0, tab));
      if (first && absl::AsciiStrToLower(row.text) == "text" && absl::AsciiStrToLower(label) == "label") {
        first = false;
        return absl::OkStatus();  // header
      }
      if (label.empty()) return absl::InvalidArgumentError(where + "empty label");
      row.label = LabelFromString(std::move(label), number);
    }
    first = false;
    if (IsBlank(row.text)) return absl::InvalidArgumentError(where + "empty text");
    rows.push_back(std::move(row));
    return absl::OkStatus();
  }));
  if (rows.empty()) return absl::InvalidArgumentError(absl::StrCat(origin, ": no examples"));

  TextDataset data;
  data.task = "classification";
  const bool all_int = std::all_of(rows.begin(), rows.end(), [](const Row& r) { return r.label.is_int; });
  std::map<std::string, int64_t> ids;
  if (all_int) {
    int64_t max = 0;
    for (const Row& r : rows) {
      if (r.label.value < 0 || r.label.value > 100000) {
        return absl::InvalidArgumentError(absl::StrCat(origin, " line ", r.label.line, ": label ", r.label.value,
                                                       " is outside 0..100000"));
      }
      max = std::max(max, r.label.value);
    }
    for (int64_t i = 0; i <= max; ++i) data.label_names.push_back(std::to_string(i));
    data.integer_labels = true;
  } else {
    for (const Row& r : rows) ids.emplace(r.label.name, 0);
    for (auto& [name, id] : ids) {
      id = static_cast<int64_t>(data.label_names.size());
      data.label_names.push_back(name);
    }
  }
  if (data.label_names.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": classification needs at least 2 labels"));
  }
  std::unordered_set<std::string> seen;
  for (Row& r : rows) {
    std::string norm = NormalizeText(r.text);
    if (!seen.insert(norm).second) continue;  // first occurrence wins
    TextExample example{std::move(r.text), all_int ? r.label.value : ids[r.label.name]};
    switch (r.split) {
      case static_cast<int>(TextSplit::kTrain):
        data.train.push_back(std::move(example));
        break;
      case static_cast<int>(TextSplit::kValidation):
        data.validation.push_back(std::move(example));
        break;
      case static_cast<int>(TextSplit::kTest):
        data.test.push_back(std::move(example));
        break;
      default:
        AddToSplit(&data, std::move(example), norm);
    }
  }
  if (data.train.empty()) return absl::InvalidArgumentError(absl::StrCat(origin, ": no training examples"));
  return data;
}

absl::StatusOr<TextDataset> ParsePlainTextLm(std::string_view contents, const std::string& origin) {
  TextDataset data;
  data.task = "lm";
  std::unordered_set<std::string> seen;
  std::string paragraph;
  auto flush = [&] {
    std::string text = TrimEntry(paragraph);
    paragraph.clear();
    if (text.empty()) return;
    std::string norm = NormalizeText(text);
    if (!seen.insert(norm).second) return;
    AddToSplit(&data, TextExample{std::move(text), -1}, norm);
  };
  SHRINK_RETURN_IF_ERROR(ForEachLine(contents, [&](std::string_view line, int64_t) {
    if (IsBlank(line)) {
      flush();
    } else {
      if (!paragraph.empty()) paragraph.push_back('\n');
      paragraph.append(line.data(), line.size());
    }
    return absl::OkStatus();
  }));
  flush();
  if (data.train.empty()) return absl::InvalidArgumentError(absl::StrCat(origin, ": no training paragraphs"));
  return data;
}

absl::StatusOr<TextDataset> LoadClassificationFile(const std::string& path) {
  SHRINK_ASSIGN_OR_RETURN(std::string contents, ReadFile(path));
  const size_t first = contents.find_first_not_of(" \t\r\n");
  const bool jsonl = absl::EndsWith(path, ".jsonl") || absl::EndsWith(path, ".json") ||
                     (first != std::string::npos && contents[first] == '{');
  return ParseClassification(contents, jsonl, path);
}

absl::StatusOr<TextDataset> LoadPlainTextLm(const std::string& path) {
  SHRINK_ASSIGN_OR_RETURN(std::string contents, ReadFile(path));
  return ParsePlainTextLm(contents, path);
}

absl::StatusOr<std::vector<int64_t>> ClassIdsForModel(const TextDataset& data,
                                                      const std::vector<std::string>& model_labels,
                                                      int64_t num_labels) {
  const auto task_labels = static_cast<int64_t>(data.label_names.size());
  bool named = false;  // HF writes LABEL_<i> when a model was given no names
  for (size_t i = 0; i < model_labels.size(); ++i) {
    named = named || (!model_labels[i].empty() && model_labels[i] != absl::StrCat("LABEL_", i));
  }
  std::vector<int64_t> ids;
  if (data.integer_labels || !named) {
    if (task_labels > num_labels) {
      const std::string labels = data.integer_labels ? absl::StrCat("class ids up to ", task_labels - 1)
                                                     : absl::StrCat(task_labels, " labels");
      return absl::InvalidArgumentError(absl::StrCat("has ", labels, " but the model's head has ", num_labels, " classes"));
    }
    for (int64_t i = 0; i < task_labels; ++i) ids.push_back(i);
    return ids;
  }
  for (const std::string& name : data.label_names) {
    int64_t found = -1;
    for (size_t i = 0; i < model_labels.size() && found < 0; ++i) {
      if (model_labels[i] == name) found = static_cast<int64_t>(i);
    }
    for (size_t i = 0; i < model_labels.size() && found < 0; ++i) {
      if (!absl::EqualsIgnoreCase(model_labels[i], name)) continue;
      for (size_t j = i + 1; j < model_labels.size(); ++j) {
        if (absl::EqualsIgnoreCase(model_labels[j], name)) {
          return absl::InvalidArgumentError(absl::StrCat("label \"", name, "\" matches the model's labels \"",
                                                         model_labels[i], "\" and \"", model_labels[j], "\" but neither exactly"));
        }
      }
      found = static_cast<int64_t>(i);
    }
    if (found < 0 || found >= num_labels) {
      return absl::InvalidArgumentError(absl::StrCat("label \"", name, "\" is not one of the model's labels (id2label in its ",
                                                     "config.json: ", absl::StrJoin(model_labels, ", "), ")"));
    }
    ids.push_back(found);
  }
  return ids;
}

}  // namespace shrink::worker
