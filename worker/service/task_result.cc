#include "worker/service/task_result.h"

#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace shrink::worker {

v1::TaskResult RunToResult(const v1::Task& task, absl::Time start,
                           const std::function<absl::StatusOr<v1::TaskResult>()>& body) {
  absl::StatusOr<v1::TaskResult> result;
  try {
    result = body();
  } catch (const std::exception& e) {
    result = absl::InternalError(absl::StrCat("task threw: ", e.what()));
  }
  v1::TaskResult out;
  if (result.ok()) {
    out = std::move(*result);
    out.set_ok(true);
  } else {
    out.set_ok(false);
    out.set_error(result.status().ToString());
  }
  out.set_task_id(task.task_id());
  out.set_seconds(absl::ToDoubleSeconds(absl::Now() - start));
  return out;
}

}  // namespace shrink::worker
