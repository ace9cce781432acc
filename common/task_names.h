// Names of the tasks a job can measure on, shared by the coordinator (which
// validates job specs) and the worker (which loads the data). Torch-free.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace shrink {

// The built-in tasks: fashion-mnist, fortunes-topic, fortunes-lm, wordnet-lexname.
const std::vector<std::string>& BuiltinTaskNames();

// True when `task` names a user's data file rather than a built-in task.
bool IsUserTaskFile(const std::string& task);

// OK when a job may name `task` with `data_file_count` uploaded files: a built-in task, or
// one user file ending in .jsonl / .tsv (classification) or .txt (language modelling).
absl::Status ValidateTaskName(const std::string& task, int data_file_count);

}  // namespace shrink
