// Job files for `shrink submit JOB.yaml`.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "client/remote/coordinator_client.h"

namespace shrink::client {

// Parses a job file. Keys: model (folder, relative to the file), task,
// target_size, min_retention, budget, search, runtime, seed, init_agent, max_in_flight,
// name, request_id, reward {alpha, beta, gamma, delta}. Unknown keys and bad
// values are errors naming the key.
absl::StatusOr<CompressRequest> ParseJobFile(const std::string& path);

}  // namespace shrink::client
