// gzip decompression for data packages (Fashion-MNIST's idx.gz, GCIDE's dictzip). Torch-free.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace shrink::worker {

// True when `bytes` starts with gzip's magic number.
bool IsGzip(const std::string& bytes);

// The decompressed bytes of a gzip stream; `what` names the file in errors (corrupt, truncated).
absl::StatusOr<std::string> Gunzip(const std::string& compressed, const std::string& what);

}  // namespace shrink::worker
