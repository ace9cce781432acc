// Shared plumbing for the subcommands: flag parsing with --help, exit codes,
// and the job flags common to compress and demo.
#pragma once

#include <iostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/remote/coordinator_client.h"
#include "common/args.h"

namespace shrink::client {

// Prints the error and the usage to stderr; returns 2.
int UsageError(const absl::Status& status, const std::string& synopsis, const std::vector<FlagSpec>& flags);

// Prints the error to stderr; returns 1.
int Failure(const absl::Status& status);

// The flags that secure a connection to the coordinator (--tls-ca, --token).
extern const FlagSpec kTlsCaFlag;
extern const FlagSpec kTokenFlag;

// A channel to `address` secured as --tls-ca/--token (or SHRINK_TLS_CA/SHRINK_TOKEN) say;
// a token from the environment is not sent to a plaintext coordinator.
absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectToCoordinator(const Args& args, const std::string& address);

// Reads --model, --task, --target-size, --min-retention, --budget, --search,
// --seed and --request-id into `request`.
absl::Status FillRequestFromFlags(const Args& args, CompressRequest* request);

// Submits, watches (progress on stderr if `show_progress`), and fetches the
// artifact into `out_dir` (skipped when empty). Fails unless the job succeeds.
absl::StatusOr<v1::Job> RunJob(CoordinatorClient& client, const CompressRequest& request,
                               const std::string& out_dir, bool show_progress);

// Watches a job to its end, drawing a progress line on stderr.
absl::StatusOr<v1::Job> WatchWithProgress(CoordinatorClient& client, const std::string& id,
                                          bool show_progress);

}  // namespace shrink::client

// Parses flags into `var` (a StatusOr<Args>); returns from the command on
// --help (0) or a usage error (2).
#define SHRINK_PARSE_OR_EXIT(var, argc, argv, flags, synopsis)                 \
  auto var = ::shrink::Args::Parse(argc, argv, 0, flags);                       \
  if (!var.ok()) return ::shrink::client::UsageError(var.status(), synopsis, flags); \
  if (var->GetBool("help")) {                                                   \
    std::cout << ::shrink::FormatUsage(synopsis, flags);                        \
    return 0;                                                                   \
  }
