// The lower-case names of the API's enums, as logs, metrics labels, task ids and the CLI
// spell them, in one torch-free place for the coordinator, the worker and the client.
#pragma once

#include "shrink/v1/types.pb.h"
#include "shrink/v1/worker_pool.pb.h"

namespace shrink {

// The lower-case name of a job state ("searching" for SEARCHING); "unspecified" for any other value.
const char* JobStateName(v1::JobState state);

// The lower-case name of a task kind ("describe", "evaluate", "finalize"); "unknown" for any other value.
const char* TaskKindName(v1::Task::Kind kind);

}  // namespace shrink
