#include "client/command_util.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace shrink::client {

int UsageError(const absl::Status& status, const std::string& synopsis, const std::vector<FlagSpec>& flags) {
  std::cerr << "shrink: " << status.message() << "\n" << FormatUsage(synopsis, flags);
  return 2;
}

int Failure(const absl::Status& status) {
  std::cerr << "shrink: " << status.message() << "\n";
  return 1;
}

absl::Status FillRequestFromFlags(const Args& args, CompressRequest* request) {
  request->model_dir = args.Get("model");
  if (request->model_dir.empty()) return absl::InvalidArgumentError("--model is required");
  request->task = args.Get("task");
  SHRINK_ASSIGN_OR_RETURN(request->target_size, args.GetDouble("target-size"));
  SHRINK_ASSIGN_OR_RETURN(request->min_retention, args.GetDouble("min-retention"));
  SHRINK_ASSIGN_OR_RETURN(int64_t budget, args.GetInt("budget"));
  request->budget = static_cast<int>(budget);
  request->search = args.Get("search");
  SHRINK_ASSIGN_OR_RETURN(int64_t seed, args.GetInt("seed"));
  request->seed = static_cast<uint64_t>(seed);
  request->request_id = args.Get("request-id");
  return absl::OkStatus();
}

}  // namespace shrink::client
