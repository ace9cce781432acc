#include "common/task_names.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace shrink {

const std::vector<std::string>& BuiltinTaskNames() {
  static const std::vector<std::string> names = {"fashion-mnist", "fortunes-topic", "fortunes-lm", "wordnet-lexname"};
  return names;
}

bool IsUserTaskFile(const std::string& task) {
  for (const auto& name : BuiltinTaskNames()) {
    if (task == name) return false;
  }
  return true;
}

absl::Status ValidateTaskName(const std::string& task, int data_file_count) {
  if (!IsUserTaskFile(task)) return absl::OkStatus();
  const bool data_file = absl::EndsWith(task, ".jsonl") || absl::EndsWith(task, ".tsv") || absl::EndsWith(task, ".txt");
  if (!data_file) {
    return absl::InvalidArgumentError(absl::StrCat("spec.task.name: unknown task '", task, "' (known: ",
                                                   absl::StrJoin(BuiltinTaskNames(), ", "),
                                                   ", or a .jsonl / .tsv / .txt data file)"));
  }
  if (data_file_count != 1) {
    return absl::InvalidArgumentError(absl::StrCat("spec.task: the data file task '", task,
                                                   "' needs exactly one uploaded data file, got ", data_file_count));
  }
  return absl::OkStatus();
}

}  // namespace shrink
