#include "client/remote/command_util.h"

#include <cstdlib>

#include "common/channel.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/remote/report.h"
#include "common/api_names.h"
#include "common/status.h"

namespace shrink::client {

const FlagSpec kTlsCaFlag = {"tls-ca", "PEM CA of the coordinator's certificate: use TLS (env SHRINK_TLS_CA)", ""};
const FlagSpec kTokenFlag = {"token", "bearer token for the coordinator (env SHRINK_TOKEN; needs TLS)", ""};

absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectToCoordinator(const Args& args, const std::string& address) {
  auto flag_or_env = [&](const char* flag, const char* env) -> std::string {
    if (args.Has(flag)) return args.Get(flag);
    const char* value = std::getenv(env);
    return value ? value : "";
  };
  ChannelOptions options;
  options.tls_ca = flag_or_env("tls-ca", "SHRINK_TLS_CA");
  options.token = flag_or_env("token", "SHRINK_TOKEN");
  if (options.tls_ca.empty() && !args.Has("token")) options.token.clear();
  return MakeCoordinatorChannel(address, options);
}

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
  request->runtime = args.Get("runtime");
  SHRINK_ASSIGN_OR_RETURN(int64_t seed, args.GetInt("seed"));
  request->seed = static_cast<uint64_t>(seed);
  request->request_id = args.Get("request-id");
  return absl::OkStatus();
}

absl::StatusOr<v1::Job> RunJob(CoordinatorClient& client, const CompressRequest& request,
                               const std::string& out_dir, bool show_progress) {
  SHRINK_ASSIGN_OR_RETURN(v1::JobSpec spec, client.PrepareSpec(request));
  SHRINK_ASSIGN_OR_RETURN(v1::Job job, client.Submit(spec));
  if (show_progress) std::cerr << "job " << job.id() << " submitted (" << request.search << ", budget "
                               << request.budget << ")\n";
  SHRINK_ASSIGN_OR_RETURN(job, WatchWithProgress(client, job.id(), show_progress));
  if (job.state() != v1::SUCCEEDED) {
    return absl::AbortedError(absl::StrCat("job ", job.id(), " ended ", JobStateName(job.state()),
                                           job.error().empty() ? "" : ": ", job.error()));
  }
  if (!out_dir.empty()) SHRINK_RETURN_IF_ERROR(client.FetchArtifact(job.id(), out_dir));
  return job;
}

absl::StatusOr<v1::Job> WatchWithProgress(CoordinatorClient& client, const std::string& id,
                                          bool show_progress) {
  const bool tty = isatty(STDERR_FILENO) != 0;
  absl::Time start = absl::Now();
  int last_evaluated = -1;
  v1::JobState last_state = v1::JOB_STATE_UNSPECIFIED;
  auto result = client.Watch(id, [&](const v1::JobEvent& event) {
    if (!show_progress) return;
    const v1::Job& job = event.job();
    std::string line = FormatProgress(job, absl::ToDoubleSeconds(absl::Now() - start));
    if (tty) {
      std::cerr << "\r\033[K" << line << std::flush;
    } else if (job.evaluated() != last_evaluated || job.state() != last_state) {
      std::cerr << line << "\n";
    }
    last_evaluated = job.evaluated();
    last_state = job.state();
  });
  if (show_progress && tty) std::cerr << "\n";
  return result;
}

}  // namespace shrink::client
