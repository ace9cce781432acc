#include "worker/runtime/available_runtimes.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/runtimes.h"
#include "worker/runtime/onnxruntime_process.h"

namespace shrink::worker {

absl::Status CheckOnnxRuntime() {
  absl::StatusOr<std::unique_ptr<OnnxRuntimeProcess>> process = OnnxRuntimeProcess::Start();
  if (!process.ok()) return process.status();
  // Releasing a session that does not exist is a no-op the runner answers once it has
  // imported onnxruntime-node: a reply proves the runtime loads.
  return (*process)->Unload(0);
}

absl::StatusOr<std::vector<std::string>> CheckRuntimeNames(const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    if (!IsKnownRuntime(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown runtime '", name, "'; known: ", absl::StrJoin(KnownRuntimes(), ", ")));
    }
  }
  return names;
}

absl::StatusOr<std::vector<std::string>> ResolveRuntimes(const std::vector<std::string>& requested) {
  if (requested.empty()) {
    std::vector<std::string> runtimes = {kRuntimeLibTorch};
    if (CheckOnnxRuntime().ok()) runtimes.push_back(kRuntimeOnnxRuntime);
    return runtimes;
  }
  if (absl::StatusOr<std::vector<std::string>> known = CheckRuntimeNames(requested); !known.ok()) return known;
  for (const std::string& name : requested) {
    if (name == kRuntimeOnnxRuntime) {
      absl::Status usable = CheckOnnxRuntime();
      if (!usable.ok()) {
        return absl::FailedPreconditionError(absl::StrCat("runtime onnxruntime is not usable here: ", usable.message()));
      }
    }
  }
  return requested;
}

}  // namespace shrink::worker
