// Reading PEM files named by a TLS flag (certificates, keys, CA bundles), shared by
// the client channel (common/channel.h) and the server credentials (common/server_credentials.h).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace shrink {

// Reads the PEM file at `path`, given by `flag` (e.g. "--tls-ca"); InvalidArgument, naming the
// flag and the path, when it cannot be read or holds no "-----BEGIN " block.
absl::StatusOr<std::string> ReadPem(const std::string& path, const char* flag);

}  // namespace shrink
