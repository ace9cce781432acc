// A typed client for the Coordinator service: uploads, jobs, watching and
// fetching artifacts. Used by every `shrink` command, remote or embedded.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/status/statusor.h"
#include "shrink/v1/coordinator.grpc.pb.h"

namespace shrink::client {

// Everything a user states about a compression job.
struct CompressRequest {
  std::string model_dir;      // config.json + model.safetensors
  std::string task = "fashion-mnist";
  double target_size = 0.25;
  double min_retention = 0.95;
  int budget = 16;
  std::string search = "random";
  std::string runtime;        // where latency is measured: libtorch | onnxruntime; empty = the coordinator's default
  uint64_t seed = 0;
  int max_in_flight = 0;
  std::string name;
  std::string request_id;     // makes a retried submit idempotent
  v1::RewardWeights reward;   // zeros = defaults
  std::string init_agent;     // ddpg: start from this finished job's agent (transfer)
};

// Thread-compatible; one per command.
class CoordinatorClient {
 public:
  // A client of the coordinator behind `channel` (remote or in-process).
  explicit CoordinatorClient(std::shared_ptr<grpc::Channel> channel);

  // Uploads the model files and the task's data (skipping blobs the
  // coordinator already has) and returns the job spec that names them.
  absl::StatusOr<v1::JobSpec> PrepareSpec(const CompressRequest& request);
  // Submits a prepared spec; returns the new (or, for a repeated request id, the existing) job.
  absl::StatusOr<v1::Job> Submit(const v1::JobSpec& spec);
  // The job `id` as the coordinator has it now.
  absl::StatusOr<v1::Job> Get(const std::string& id);
  // Every job the caller may see.
  absl::StatusOr<std::vector<v1::Job>> List();
  // Cancels the job `id`; returns it in its new state.
  absl::StatusOr<v1::Job> Cancel(const std::string& id);
  // The evaluated candidates of the job `id` (for `shrink report`).
  absl::StatusOr<std::vector<v1::CandidateSummary>> Candidates(const std::string& id);
  // Calls `on_event` for every progress event until the job ends; returns
  // the final job. Reconnects if the stream breaks while the job runs.
  absl::StatusOr<v1::Job> Watch(const std::string& id,
                                const std::function<void(const v1::JobEvent&)>& on_event);
  // Writes the artifact's files into `out_dir` (created; existing files are
  // replaced atomically), resuming an interrupted transfer; checks sha256.
  absl::Status FetchArtifact(const std::string& id, const std::string& out_dir);

 private:
  absl::Status UploadIfMissing(const std::string& path, v1::FileRef* ref);

  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

// The data files of a task (fashion-mnist, fortunes-topic, fortunes-lm, wordnet-lexname, or a user's
// JSONL/TSV/.txt file), as the client uploads them: (name, local path).
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> BuiltinTaskFiles(
    const std::string& task);

}  // namespace shrink::client
