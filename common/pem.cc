#include "common/pem.h"

#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace shrink {

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* flag) {
  auto pem = ReadFile(path);
  if (!pem.ok()) return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": ", pem.status().message()));
  if (pem->find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": not a PEM file"));
  }
  return pem;
}

}  // namespace shrink
