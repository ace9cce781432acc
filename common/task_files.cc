#include "common/task_files.h"

#include <dirent.h>
#include <sys/stat.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/status.h"
#include "common/task_names.h"

namespace shrink {
namespace {

std::string BaseName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::map<std::string, std::string> DebianFashionMnistFiles() {
  std::map<std::string, std::string> files;
  for (const char* name : {kFashionMnistTrainImages, kFashionMnistTrainLabels, kFashionMnistTestImages,
                           kFashionMnistTestLabels}) {
    files[name] = absl::StrCat(kDebianFashionMnistDir, "/", name);
  }
  return files;
}

std::map<std::string, std::string> DebianFortunesFiles(const std::string& dir) {
  std::map<std::string, std::string> files;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return files;
  while (dirent* entry = readdir(d)) {
    const std::string name = entry->d_name;
    if (name.empty() || name[0] == '.' || absl::EndsWith(name, ".dat") || absl::EndsWith(name, ".u8") ||
        absl::EndsWith(name, ".sh")) {
      continue;
    }
    const std::string path = dir + "/" + name;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;  // links, sub-folders
    files[name] = path;
  }
  closedir(d);
  return files;
}

absl::StatusOr<std::map<std::string, std::string>> LocalTaskFiles(const std::string& task) {
  std::map<std::string, std::string> files;
  if (task == "fashion-mnist") {
    for (const auto& [name, path] : DebianFashionMnistFiles()) {
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
  if (task == "wordnet-lexname") {
    for (const char* name : {"data.adj", "data.adv", "data.noun", "data.verb"}) {
      const std::string path = absl::StrCat(kDebianWordnetDir, "/", name);
      if (!PathExists(path)) {
        return absl::NotFoundError(absl::StrCat(path, " is missing; install the Debian package wordnet-base"));
      }
      files[name] = path;
    }
    return files;
  }
  if (!PathExists(task)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown task '", task, "': not ", absl::StrJoin(BuiltinTaskNames(), ", "),
                                                   " or a data file (.jsonl / .tsv classification, .txt language "
                                                   "modelling)"));
  }
  SHRINK_RETURN_IF_ERROR(ValidateTaskName(task, 1));  // its ending picks the parser
  files[BaseName(task)] = task;
  return files;
}

}  // namespace shrink
