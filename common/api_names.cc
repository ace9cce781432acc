#include "common/api_names.h"

namespace shrink {

const char* JobStateName(v1::JobState state) {
  switch (state) {
    case v1::QUEUED: return "queued";
    case v1::SEARCHING: return "searching";
    case v1::FINALIZING: return "finalizing";
    case v1::SUCCEEDED: return "succeeded";
    case v1::FAILED: return "failed";
    case v1::CANCELLED: return "cancelled";
    default: return "unspecified";
  }
}

const char* TaskKindName(v1::Task::Kind kind) {
  switch (kind) {
    case v1::Task::DESCRIBE: return "describe";
    case v1::Task::EVALUATE: return "evaluate";
    case v1::Task::FINALIZE: return "finalize";
    default: return "unknown";
  }
}

}  // namespace shrink
