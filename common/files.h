// File helpers. Writers never leave a half-written file: they write a
// temporary file beside the target and rename it into place.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace shrink {

// Reads a whole file.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Writes `contents` to `path` atomically (temp file + fsync + rename).
absl::Status WriteFileAtomic(const std::string& path, const std::string& contents);

// Creates `path` and its parents; OK when it exists.
absl::Status MakeDirs(const std::string& path);

// Size in bytes of a regular file.
absl::StatusOr<int64_t> FileSize(const std::string& path);

// Sum of the sizes of the regular files directly inside `dir`.
absl::StatusOr<int64_t> DirectoryBytes(const std::string& dir);

// A fresh, empty directory under the system temp dir (or `parent` if given).
absl::StatusOr<std::string> MakeTempDir(const std::string& prefix,
                                        const std::string& parent = "");

// Removes a file or directory tree; missing paths are fine.
void RemoveAll(const std::string& path);

// True when `path` exists.
bool PathExists(const std::string& path);

}  // namespace shrink
