#include "worker/data/task_data.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status.h"
#include "worker/data/text_data.h"
#include "worker/data/wordnet.h"

namespace shrink::worker {
namespace {

bool IsPlainText(const std::string& name) { return absl::EndsWith(name, ".txt"); }

}  // namespace

absl::StatusOr<TaskData> LoadTaskData(const std::string& task, const std::map<std::string, std::string>& files) {
  TaskData data;
  data.name = task;
  if (task == "fashion-mnist") {
    SHRINK_ASSIGN_OR_RETURN(data.images, ImageDataset::LoadFashionMnist(files));
    return data;
  }
  if (files.empty()) return absl::InvalidArgumentError(absl::StrCat("task ", task, " came without data files"));
  TextDataset text;
  if (task == "fortunes-topic") {
    SHRINK_ASSIGN_OR_RETURN(text, LoadFortunesTopic(files));
  } else if (task == "fortunes-lm") {
    SHRINK_ASSIGN_OR_RETURN(text, LoadFortunesLm(files));
  } else if (task == kWordnetLexnameTask) {
    SHRINK_ASSIGN_OR_RETURN(text, LoadWordnetLexname(files));
  } else {
    if (files.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat("task file ", task, " must come as one data file, got ", files.size()));
    }
    // The task's name picks the parser (TaskSpec.name): a worker's blob path has no extension.
    const std::string& path = files.begin()->second;
    if (IsPlainText(task)) {
      SHRINK_ASSIGN_OR_RETURN(text, LoadPlainTextLm(path));
    } else {
      SHRINK_ASSIGN_OR_RETURN(std::string contents, ReadFile(path));
      SHRINK_ASSIGN_OR_RETURN(text, ParseClassification(contents, !absl::EndsWith(task, ".tsv"), path));
    }
  }
  data.text = std::make_shared<const TextDataset>(std::move(text));
  return data;
}

}  // namespace shrink::worker
