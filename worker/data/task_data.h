// Loading a task's data from its files, for the worker (files fetched as blobs)
// and the CLI (files on this machine) alike. Torch-free.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/task_files.h"
#include "common/task_names.h"
#include "worker/model/model.h"

namespace shrink::worker {

// The task's data from `files` (name -> path, as LocalTaskFiles names them).
absl::StatusOr<TaskData> LoadTaskData(const std::string& task, const std::map<std::string, std::string>& files);

}  // namespace shrink::worker
