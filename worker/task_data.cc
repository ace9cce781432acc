#include "worker/task_data.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status.h"
#include "worker/text_data.h"

namespace shrink::worker {
namespace {

constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
constexpr const char* kFashionMnistFiles[] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};

std::string BaseName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool IsPlainText(const std::string& name) { return absl::EndsWith(name, ".txt"); }

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> LocalTaskFiles(const std::string& task) {
  std::map<std::string, std::string> files;
  if (task == "fashion-mnist") {
    for (const char* name : kFashionMnistFiles) {
      std::string path = absl::StrCat(kFashionMnistDir, "/", name);
      if (!PathExists(path)) {
        return absl::NotFoundError(absl::StrCat(path, " is missing; install the Debian package dataset-fashion-mnist"));
      }
      files[name] = path;
    }
    return files;
  }
  if (task == "fortunes-topic" || task == "fortunes-lm") {
    files = DebianFortunesFiles();
    if (files.empty()) {
      return absl::NotFoundError(absl::StrCat(kDebianFortunesDir, " has no fortune files; install the Debian packages "
                                              "fortunes and fortunes-min"));
    }
    return files;
  }
  if (!PathExists(task)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown task '", task,
                                                   "': not fashion-mnist, fortunes-topic, fortunes-lm or a data file "
                                                   "(.jsonl / .tsv classification, .txt language modelling)"));
  }
  files[BaseName(task)] = task;
  return files;
}

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
  } else {
    if (files.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat("task file ", task, " must come as one data file, got ", files.size()));
    }
    const auto& [name, path] = *files.begin();
    if (IsPlainText(name)) {
      SHRINK_ASSIGN_OR_RETURN(text, LoadPlainTextLm(path));
    } else {
      SHRINK_ASSIGN_OR_RETURN(text, LoadClassificationFile(path));
    }
  }
  data.text = std::make_shared<const TextDataset>(std::move(text));
  return data;
}

}  // namespace shrink::worker
