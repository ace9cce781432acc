// The data a model is measured on (TaskData), and loading it from a task's files, for the
// worker (files fetched as blobs) and the CLI (files on this machine) alike. Torch-free.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/task_files.h"
#include "common/task_names.h"
#include "worker/data/image_dataset.h"

namespace shrink::worker {

struct TextDataset;  // data/text_data.h: texts with labels (classification) or without (LM)

// The data a model is measured on: images (Fashion-MNIST) or text. Both null =
// no task: Evaluate then reports bytes, params and latency on synthetic input only.
struct TaskData {
  std::string name;  // "fashion-mnist", "fortunes-topic", "fortunes-lm", or a file
  std::shared_ptr<const ImageDataset> images;
  std::shared_ptr<const TextDataset> text;

  bool empty() const { return !images && !text; }
};

// The task's data from `files` (name -> path, as LocalTaskFiles names them).
absl::StatusOr<TaskData> LoadTaskData(const std::string& task, const std::map<std::string, std::string>& files);

}  // namespace shrink::worker
