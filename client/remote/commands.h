// The `shrink` subcommands that talk to a coordinator (torch-free). Each takes the
// arguments after its name and returns the process exit code: 0 ok, 2 usage error,
// 1 failure. The commands that load models are in client/local/commands.h.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/status/statusor.h"

namespace shrink::client {

// How `shrink compress` without --coordinator runs the coordinator and workers in its own process.
struct EmbeddedOptions {
  std::string state_dir;  // empty = a temporary folder removed on exit
  int workers = 1;
  int slots_per_worker = 2;
  int threads_per_task = 1;  // intra-op threads per running task
  // Runtimes the workers must have (a job's runtime): checked at start, so that a job never
  // waits for a runtime this machine lacks. Empty = whatever the workers detect.
  std::vector<std::string> runtimes;
};

// Starts the in-process service (kept alive by the caller until the command returns) and
// returns a channel to its coordinator.
using EmbeddedStarter = std::function<absl::StatusOr<std::shared_ptr<grpc::Channel>>(const EmbeddedOptions&)>;

// `shrink compress`: on the --coordinator, or else on the service `start_embedded` starts
// (without one, a job that would run in this process fails: it needs the local runtime).
int RunCompress(int argc, char** argv, const EmbeddedStarter& start_embedded);

// Whether `shrink compress ARGS` runs its job in this process: the flags parse, no --help,
// no --coordinator.
bool CompressRunsEmbedded(int argc, char** argv);

// `shrink submit JOB.yaml`: submits a job file and prints the job id.
int RunSubmit(int argc, char** argv);
// `shrink watch ID`: follows a job's progress until it ends.
int RunWatch(int argc, char** argv);
// `shrink status ID`: prints one job.
int RunStatus(int argc, char** argv);
// `shrink list`: lists the jobs.
int RunList(int argc, char** argv);
// `shrink cancel ID`: cancels a job.
int RunCancel(int argc, char** argv);
// `shrink fetch ID --out DIR`: downloads a finished job's compressed model.
int RunFetch(int argc, char** argv);
// `shrink report ID --out FILE.html`: writes a job's HTML report.
int RunReport(int argc, char** argv);
// `shrink health`: the gRPC health of a coordinator, or a worker's /healthz.
int RunHealth(int argc, char** argv);

}  // namespace shrink::client
