// Commands that drive jobs on a coordinator: compress (remote, or embedded on the
// service the caller starts), submit, watch, status, list, cancel, fetch.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/remote/commands.h"
#include "client/remote/command_util.h"
#include "client/remote/coordinator_client.h"
#include "client/remote/job_file.h"
#include "client/remote/report.h"
#include "common/api_names.h"
#include "common/channel.h"
#include "common/runtimes.h"
#include "common/status.h"

namespace shrink::client {
namespace {

const FlagSpec kCoordinatorFlag = {"coordinator", "coordinator HOST:PORT (env SHRINK_COORDINATOR)",
                                   "127.0.0.1:50051"};
const FlagSpec kHelpFlag = {"help", "show this help", "", true};
const FlagSpec kRuntimeFlag = {"runtime", "where the model will run, and latency is measured: libtorch | onnxruntime (default libtorch)", ""};
std::string CoordinatorAddress(const Args& args) {
  if (args.Has("coordinator")) return args.Get("coordinator");
  if (const char* env = std::getenv("SHRINK_COORDINATOR")) return env;
  return args.Get("coordinator");
}

// The channel to the coordinator the flags name, with TLS and token if given.
absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(const Args& args) {
  return ConnectToCoordinator(args, CoordinatorAddress(args));
}

// Connects or returns the exit code of the failure from the command.
#define SHRINK_CONNECT_OR_EXIT(channel, args)              \
  auto channel##_or = Connect(args);                       \
  if (!channel##_or.ok()) return Failure(channel##_or.status()); \
  std::shared_ptr<grpc::Channel> channel = *channel##_or

// A command that needs one job id and a coordinator.
struct JobCommand {
  Args args;
  std::string id;
};

// The flags of `shrink compress`, remote and embedded.
std::vector<FlagSpec> CompressFlags() {
  return {
      {"model", "model folder: config.json + model.safetensors (required)", ""},
      {"task", "task: fashion-mnist", "fashion-mnist"},
      {"target-size", "largest size allowed, as a fraction of the model's bytes", "0.25"},
      {"min-retention", "smallest accuracy retention allowed", "0.95"},
      {"budget", "candidate evaluations", "16"},
      {"search", "ddpg | uniform | random | evolution", "random"},
      kRuntimeFlag,
      {"seed", "seed of the search", "0"},
      {"init-agent", "ddpg: start from the agent of this finished job (transfer)", ""},
      kCoordinatorFlag,
      kTlsCaFlag,
      kTokenFlag,
      {"out", "folder for the compressed model (default: <model>-shrunk)", ""},
      {"json", "print the result as JSON", "", true},
      {"state", "embedded mode: state folder (default: temporary)", ""},
      {"workers", "embedded mode: workers", "1"},
      {"slots", "embedded mode: slots per worker", "2"},
      {"threads", "embedded mode: intra-op threads per task", "1"},
      {"request-id", "makes a retried submission idempotent", ""},
      kHelpFlag,
  };
}

}  // namespace

bool CompressRunsEmbedded(int argc, char** argv) {
  auto args = Args::Parse(argc, argv, 0, CompressFlags());
  return args.ok() && !args->GetBool("help") && !args->Has("coordinator");
}

int RunCompress(int argc, char** argv, const EmbeddedStarter& start_embedded) {
  const std::vector<FlagSpec> flags = CompressFlags();
  const std::string synopsis =
      "shrink compress --model DIR [--task SPEC] [--target-size F] [--min-retention F] [--budget N] "
      "[--search ddpg|uniform|random|evolution] [--runtime libtorch|onnxruntime] [--seed N] [--init-agent JOB_ID] "
      "[--coordinator HOST:PORT] "
      "[--out DIR] [--json]";
  SHRINK_PARSE_OR_EXIT(args, argc, argv, flags, synopsis);
  CompressRequest request;
  if (auto s = FillRequestFromFlags(*args, &request); !s.ok()) return UsageError(s, synopsis, flags);
  request.init_agent = args->Get("init-agent");
  std::string out = args->Get("out");
  if (out.empty()) out = absl::StrCat(request.model_dir, "-shrunk");

  std::shared_ptr<grpc::Channel> channel;
  if (args->Has("coordinator")) {
    auto connected = Connect(*args);
    if (!connected.ok()) return Failure(connected.status());
    channel = *connected;
  } else {
    EmbeddedOptions options;
    options.state_dir = args->Get("state");
    auto workers = args->GetInt("workers"), slots = args->GetInt("slots"), threads = args->GetInt("threads");
    if (!workers.ok() || !slots.ok() || !threads.ok()) {
      return UsageError(absl::InvalidArgumentError("--workers, --slots and --threads take integers"),
                        synopsis, flags);
    }
    options.workers = static_cast<int>(*workers);
    options.slots_per_worker = static_cast<int>(*slots);
    options.threads_per_task = static_cast<int>(*threads);
    if (!request.runtime.empty() && request.runtime != kRuntimeLibTorch) options.runtimes = {kRuntimeLibTorch, request.runtime};
    if (!start_embedded) {
      return Failure(absl::FailedPreconditionError(
          "compress without --coordinator runs the job in this process, which needs the local runtime (LibTorch)"));
    }
    auto started = start_embedded(options);
    if (!started.ok()) return Failure(started.status());
    channel = *started;
  }
  CoordinatorClient client(channel);
  auto job = RunJob(client, request, out, !args->GetBool("json"));
  if (!job.ok()) return Failure(job.status());
  if (args->GetBool("json")) {
    std::cout << FormatJobJson(*job) << "\n";
  } else {
    std::cout << FormatResultTable({{request.search, job->final_evaluation(), job->goal_met()}});
    std::cout << "compressed model written to " << out << "\n";
  }
  return 0;
}

int RunSubmit(int argc, char** argv) {
  const std::vector<FlagSpec> flags = {kRuntimeFlag, kCoordinatorFlag, kTlsCaFlag, kTokenFlag, kHelpFlag};
  const std::string synopsis = "shrink submit JOB.yaml [--runtime libtorch|onnxruntime] [--coordinator HOST:PORT]";
  SHRINK_PARSE_OR_EXIT(args, argc, argv, flags, synopsis);
  if (args->positionals().size() != 1) {
    return UsageError(absl::InvalidArgumentError("give exactly one job file"), synopsis, flags);
  }
  auto request = ParseJobFile(args->positionals()[0]);
  if (!request.ok()) return Failure(request.status());
  if (args->Has("runtime")) request->runtime = args->Get("runtime");  // the flag wins over the file's key
  SHRINK_CONNECT_OR_EXIT(channel, *args);
  CoordinatorClient client(channel);
  auto spec = client.PrepareSpec(*request);
  if (!spec.ok()) return Failure(spec.status());
  auto job = client.Submit(*spec);
  if (!job.ok()) return Failure(job.status());
  std::cout << job->id() << "\n";
  return 0;
}

namespace {
// Parses "<command> ID [flags]"; exits early (returns a code) on errors.
absl::StatusOr<JobCommand> ParseJobCommand(int argc, char** argv, std::vector<FlagSpec> flags,
                                           const std::string& synopsis, int* exit_code) {
  flags.push_back(kCoordinatorFlag);
  flags.push_back(kTlsCaFlag);
  flags.push_back(kTokenFlag);
  flags.push_back(kHelpFlag);
  auto args = Args::Parse(argc, argv, 0, flags);
  if (!args.ok()) {
    *exit_code = UsageError(args.status(), synopsis, flags);
    return args.status();
  }
  if (args->GetBool("help")) {
    std::cout << FormatUsage(synopsis, flags);
    *exit_code = 0;
    return absl::CancelledError("help");
  }
  if (args->positionals().size() != 1) {
    *exit_code = UsageError(absl::InvalidArgumentError("give exactly one job id"), synopsis, flags);
    return absl::InvalidArgumentError("job id");
  }
  return JobCommand{*args, args->positionals()[0]};
}
}  // namespace

int RunWatch(int argc, char** argv) {
  int code = 0;
  auto cmd = ParseJobCommand(argc, argv, {}, "shrink watch ID [--coordinator HOST:PORT]", &code);
  if (!cmd.ok()) return code;
  SHRINK_CONNECT_OR_EXIT(channel, cmd->args);
  CoordinatorClient client(channel);
  auto job = WatchWithProgress(client, cmd->id, true);
  if (!job.ok()) return Failure(job.status());
  std::cout << FormatJobStatus(*job);
  return job->state() == v1::SUCCEEDED ? 0 : 1;
}

int RunStatus(int argc, char** argv) {
  int code = 0;
  auto cmd = ParseJobCommand(argc, argv, {{"json", "print the job as JSON", "", true}},
                             "shrink status ID [--json] [--coordinator HOST:PORT]", &code);
  if (!cmd.ok()) return code;
  SHRINK_CONNECT_OR_EXIT(channel, cmd->args);
  CoordinatorClient client(channel);
  auto job = client.Get(cmd->id);
  if (!job.ok()) return Failure(job.status());
  std::cout << (cmd->args.GetBool("json") ? FormatJobJson(*job) + "\n" : FormatJobStatus(*job));
  return 0;
}

int RunCancel(int argc, char** argv) {
  int code = 0;
  auto cmd = ParseJobCommand(argc, argv, {}, "shrink cancel ID [--coordinator HOST:PORT]", &code);
  if (!cmd.ok()) return code;
  SHRINK_CONNECT_OR_EXIT(channel, cmd->args);
  CoordinatorClient client(channel);
  auto job = client.Cancel(cmd->id);
  if (!job.ok()) return Failure(job.status());
  std::cout << "job " << job->id() << ": " << JobStateName(job->state()) << "\n";
  return 0;
}

int RunFetch(int argc, char** argv) {
  int code = 0;
  auto cmd = ParseJobCommand(argc, argv, {{"out", "folder to write the model into (required)", ""}},
                             "shrink fetch ID --out DIR [--coordinator HOST:PORT]", &code);
  if (!cmd.ok()) return code;
  if (cmd->args.Get("out").empty()) {
    std::cerr << "shrink fetch: --out is required\n";
    return 2;
  }
  SHRINK_CONNECT_OR_EXIT(channel, cmd->args);
  CoordinatorClient client(channel);
  if (auto s = client.FetchArtifact(cmd->id, cmd->args.Get("out")); !s.ok()) return Failure(s);
  std::cout << "wrote " << cmd->args.Get("out") << "\n";
  return 0;
}

int RunList(int argc, char** argv) {
  const std::vector<FlagSpec> flags = {kCoordinatorFlag, kTlsCaFlag, kTokenFlag, kHelpFlag};
  SHRINK_PARSE_OR_EXIT(args, argc, argv, flags, "shrink list [--coordinator HOST:PORT]");
  SHRINK_CONNECT_OR_EXIT(channel, *args);
  CoordinatorClient client(channel);
  auto jobs = client.List();
  if (!jobs.ok()) return Failure(jobs.status());
  std::printf("%-18s %-11s %-8s %9s %8s %10s\n", "id", "state", "search", "evaluated", "size %", "retention");
  for (const auto& job : *jobs) {
    const v1::Evaluation& e = job.state() == v1::SUCCEEDED ? job.final_evaluation() : job.best().evaluation();
    std::printf("%-18s %-11s %-8s %5d/%-3d %8.1f %9.1f%%\n", job.id().c_str(), JobStateName(job.state()),
                job.spec().search().c_str(), job.evaluated(), job.spec().budget(), 100 * e.size_ratio(),
                100 * e.retention());
  }
  return 0;
}

}  // namespace shrink::client
