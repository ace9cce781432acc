#include "client/remote/coordinator_client.h"

#include <grpcpp/client_context.h>

#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/blob_upload.h"
#include "common/files.h"
#include "common/model_files.h"
#include "common/sha256.h"
#include "common/status.h"
#include "common/task_files.h"

namespace shrink::client {
namespace {

absl::Status RpcError(const char* what, const grpc::Status& status) {
  return absl::Status(FromGrpcStatus(status).code(), absl::StrCat(what, ": ", status.error_message()));
}

// Deadlines: a unary call answers within seconds unless the coordinator is
// gone; a stream gets a long one and is resumed (watch, fetch) when it ends.
constexpr auto kUnaryDeadline = std::chrono::seconds(30);
constexpr auto kStreamDeadline = std::chrono::minutes(10);

void SetDeadline(grpc::ClientContext* context, std::chrono::seconds after) {
  context->set_deadline(std::chrono::system_clock::now() + after);
}

}  // namespace

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> BuiltinTaskFiles(
    const std::string& task) {
  SHRINK_ASSIGN_OR_RETURN(auto files, LocalTaskFiles(task));
  return std::vector<std::pair<std::string, std::string>>(files.begin(), files.end());
}

CoordinatorClient::CoordinatorClient(std::shared_ptr<grpc::Channel> channel)
    : stub_(v1::Coordinator::NewStub(channel)) {}

absl::Status CoordinatorClient::UploadIfMissing(const std::string& path, v1::FileRef* ref) {
  v1::StatBlobsRequest request;
  request.add_sha256(ref->sha256());
  v1::StatBlobsResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, kUnaryDeadline);
  grpc::Status status = stub_->StatBlobs(&context, request, &response);
  if (!status.ok()) return RpcError("StatBlobs", status);
  if (response.missing_size() == 0) return absl::OkStatus();
  return UploadFile(stub_.get(), path, *ref);
}

absl::StatusOr<v1::JobSpec> CoordinatorClient::PrepareSpec(const CompressRequest& request) {
  v1::JobSpec spec;
  spec.set_name(request.name);
  std::vector<std::string> names = {kModelConfigFile, kModelWeightsFile};
  names.insert(names.end(), TokenizerFileNames().begin(), TokenizerFileNames().end());
  for (const std::string& name : names) {
    std::string path = absl::StrCat(request.model_dir, "/", name);
    const bool required = name == kModelConfigFile || name == kModelWeightsFile;
    if (!PathExists(path)) {
      if (!required) continue;  // tokenizer files travel when the model has them
      return absl::NotFoundError(absl::StrCat("--model ", request.model_dir, " has no ", name));
    }
    SHRINK_ASSIGN_OR_RETURN(v1::FileRef ref, DescribeFile(path, name));
    SHRINK_RETURN_IF_ERROR(UploadIfMissing(path, &ref));
    ref.set_origin(path);
    *spec.add_model_files() = ref;
  }
  spec.mutable_task()->set_name(request.task);
  SHRINK_ASSIGN_OR_RETURN(auto data_files, BuiltinTaskFiles(request.task));
  for (const auto& [name, path] : data_files) {
    SHRINK_ASSIGN_OR_RETURN(v1::FileRef ref, DescribeFile(path, name));
    SHRINK_RETURN_IF_ERROR(UploadIfMissing(path, &ref));
    ref.set_origin(path);
    *spec.mutable_task()->add_data_files() = ref;
  }
  spec.mutable_goal()->set_target_size(request.target_size);
  spec.mutable_goal()->set_min_retention(request.min_retention);
  spec.set_budget(request.budget);
  spec.set_search(request.search);
  spec.set_seed(request.seed);
  spec.set_init_agent(request.init_agent);
  spec.set_runtime(request.runtime);
  spec.set_max_in_flight(request.max_in_flight);
  spec.set_client_request_id(request.request_id);
  *spec.mutable_reward() = request.reward;
  return spec;
}

absl::StatusOr<v1::Job> CoordinatorClient::Submit(const v1::JobSpec& spec) {
  v1::SubmitJobRequest request;
  *request.mutable_spec() = spec;
  v1::Job job;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  grpc::Status status = stub_->SubmitJob(&context, request, &job);
  if (!status.ok()) return RpcError("SubmitJob", status);
  return job;
}

absl::StatusOr<v1::Job> CoordinatorClient::Get(const std::string& id) {
  v1::GetJobRequest request;
  request.set_id(id);
  v1::Job job;
  grpc::ClientContext context;
  SetDeadline(&context, kUnaryDeadline);
  grpc::Status status = stub_->GetJob(&context, request, &job);
  if (!status.ok()) return RpcError("GetJob", status);
  return job;
}

absl::StatusOr<std::vector<v1::Job>> CoordinatorClient::List() {
  v1::ListJobsResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, kUnaryDeadline);
  grpc::Status status = stub_->ListJobs(&context, v1::ListJobsRequest(), &response);
  if (!status.ok()) return RpcError("ListJobs", status);
  return std::vector<v1::Job>(response.jobs().begin(), response.jobs().end());
}

absl::StatusOr<v1::Job> CoordinatorClient::Cancel(const std::string& id) {
  v1::CancelJobRequest request;
  request.set_id(id);
  v1::Job job;
  grpc::ClientContext context;
  SetDeadline(&context, kUnaryDeadline);
  grpc::Status status = stub_->CancelJob(&context, request, &job);
  if (!status.ok()) return RpcError("CancelJob", status);
  return job;
}

absl::StatusOr<std::vector<v1::CandidateSummary>> CoordinatorClient::Candidates(const std::string& id) {
  v1::ListCandidatesRequest request;
  request.set_id(id);
  v1::ListCandidatesResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, kUnaryDeadline);
  grpc::Status status = stub_->ListCandidates(&context, request, &response);
  if (!status.ok()) return RpcError("ListCandidates", status);
  return std::vector<v1::CandidateSummary>(response.candidates().begin(), response.candidates().end());
}

absl::StatusOr<v1::Job> CoordinatorClient::Watch(
    const std::string& id, const std::function<void(const v1::JobEvent&)>& on_event) {
  constexpr int kMaxReconnects = 20;
  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    SetDeadline(&context, std::chrono::duration_cast<std::chrono::seconds>(kStreamDeadline));
    v1::WatchJobRequest request;
    request.set_id(id);
    auto reader = stub_->WatchJob(&context, request);
    v1::JobEvent event;
    v1::Job last;
    bool any = false;
    while (reader->Read(&event)) {
      on_event(event);
      last = event.job();
      any = true;
      attempt = 0;  // progress: only consecutive failures count
    }
    grpc::Status status = reader->Finish();
    if (status.ok() && any) {
      if (last.state() == v1::SUCCEEDED || last.state() == v1::FAILED || last.state() == v1::CANCELLED) {
        return last;
      }
    }
    if (status.error_code() == grpc::StatusCode::NOT_FOUND ||
        status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
        status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
        status.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
      return RpcError("WatchJob", status);
    }
    if (attempt >= kMaxReconnects) return RpcError("WatchJob", status);
    // The stream broke while the job runs: watch again from the current state.
    std::this_thread::sleep_for(std::chrono::milliseconds(200 * (attempt + 1)));
  }
}

absl::Status CoordinatorClient::FetchArtifact(const std::string& id, const std::string& out_dir) {
  SHRINK_RETURN_IF_ERROR(MakeDirs(out_dir));
  // Files arrive into "<name>.part" and are renamed once their digest checks.
  std::string current_file;
  int64_t current_offset = 0;
  std::string current_digest;
  std::unique_ptr<std::ofstream> out;
  auto part_path = [&](const std::string& name) { return absl::StrCat(out_dir, "/", name, ".part"); };

  // Resume where an earlier (perhaps killed) fetch stopped: skip files that
  // are already in place with the right digest, continue a ".part" file.
  SHRINK_ASSIGN_OR_RETURN(v1::Job job, Get(id));
  if (job.state() == v1::SUCCEEDED) {
    bool complete = true;
    for (const auto& file : job.artifact_files()) {
      if (file.name().empty() || file.name().find('/') != std::string::npos) {
        return absl::DataLossError(absl::StrCat("artifact names a bad file '", file.name(), "'"));
      }
      std::string final_path = absl::StrCat(out_dir, "/", file.name());
      if (PathExists(final_path)) {
        auto digest = Sha256File(final_path);
        if (digest.ok() && *digest == file.sha256()) continue;
      }
      complete = false;
      current_file = file.name();
      current_digest = file.sha256();
      auto have = FileSize(part_path(file.name()));
      current_offset = have.ok() && *have <= file.size() ? *have : 0;
      out = std::make_unique<std::ofstream>(
          part_path(file.name()), std::ios::binary | (current_offset > 0 ? std::ios::app : std::ios::trunc));
      break;
    }
    if (complete) return absl::OkStatus();
  }
  bool resumed = current_offset > 0;
  auto finish_file = [&]() -> absl::Status {
    if (current_file.empty()) return absl::OkStatus();
    out->close();
    std::string part = part_path(current_file);
    SHRINK_ASSIGN_OR_RETURN(std::string digest, Sha256File(part));
    if (digest != current_digest) {
      std::remove(part.c_str());  // a bad partial file must not be resumed again
      return absl::DataLossError(absl::StrCat("artifact file ", current_file, " hashes to ", digest,
                                              ", expected ", current_digest,
                                              resumed ? "; the partial file was removed, fetch again" : ""));
    }
    if (std::rename(part.c_str(), absl::StrCat(out_dir, "/", current_file).c_str()) != 0) {
      return absl::InternalError(absl::StrCat("cannot move ", part, " into place"));
    }
    current_file.clear();
    resumed = false;
    return absl::OkStatus();
  };
  for (int attempt = 0; attempt < 5; ++attempt) {
    grpc::ClientContext context;
    SetDeadline(&context, std::chrono::duration_cast<std::chrono::seconds>(kStreamDeadline));
    v1::FetchArtifactRequest request;
    request.set_id(id);
    request.set_file(current_file);
    request.set_offset(current_offset);
    auto reader = stub_->FetchArtifact(&context, request);
    v1::ArtifactChunk chunk;
    while (reader->Read(&chunk)) {
      if (chunk.file() != current_file) {
        SHRINK_RETURN_IF_ERROR(finish_file());
        if (chunk.file().empty() || chunk.file().find('/') != std::string::npos) {
          return absl::DataLossError(absl::StrCat("artifact names a bad file '", chunk.file(), "'"));
        }
        current_file = chunk.file();
        current_digest = chunk.sha256();
        current_offset = 0;
        out = std::make_unique<std::ofstream>(part_path(current_file), std::ios::binary | std::ios::trunc);
      }
      if (chunk.offset() != current_offset) {
        return absl::DataLossError(absl::StrCat("artifact ", current_file, ": chunk at ", chunk.offset(),
                                                ", expected ", current_offset));
      }
      out->write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
      if (!*out) return absl::ResourceExhaustedError(absl::StrCat("cannot write into ", out_dir));
      current_offset += static_cast<int64_t>(chunk.data().size());
    }
    grpc::Status status = reader->Finish();
    if (status.ok()) return finish_file();
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE &&
        status.error_code() != grpc::StatusCode::CANCELLED &&
        status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      return RpcError("FetchArtifact", status);
    }
    if (out) out->flush();  // resume from what arrived
  }
  return absl::UnavailableError("FetchArtifact: the coordinator kept dropping the transfer");
}

}  // namespace shrink::client
