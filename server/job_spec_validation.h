// Checks a submitted job spec before the coordinator takes it: field by field,
// each error naming the field (`spec.budget`, `spec.goal.target_size`, ...).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "server/storage/blob_store.h"
#include "server/storage/job_store.h"
#include "shrink/v1/coordinator.pb.h"

namespace shrink::server {

// OK when `spec` (its search already defaulted) can run: its files are
// uploaded to `blobs`, its numbers are in range, and the job named by
// init_agent, if any, is a finished ddpg job of `tenant` in `store` with a checkpoint.
// Needs no coordinator lock: it reads only the two stores.
absl::Status ValidateJobSpec(const v1::JobSpec& spec, const std::string& tenant, const BlobStore& blobs,
                             JobStore& store);

}  // namespace shrink::server
