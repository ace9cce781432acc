#include "server/services.h"

#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/api_names.h"
#include "common/log.h"
#include "common/status.h"

namespace shrink::server {
namespace {

// How often long-lived streams look up from waiting to check for cancellation.
constexpr absl::Duration kStreamPoll = absl::Milliseconds(500);

// Streams one file from `offset` as chunks built by `make_chunk`.
template <typename Chunk, typename Writer, typename MakeChunk>
absl::Status StreamFile(const std::string& path, int64_t offset, Writer* writer, MakeChunk make_chunk,
                        int64_t* sent) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("blob file missing: ", path));
  in.seekg(offset);
  std::string buffer(kChunkBytes, '\0');
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    std::streamsize n = in.gcount();
    if (n <= 0) break;
    Chunk chunk = make_chunk(offset);
    chunk.set_data(buffer.data(), static_cast<size_t>(n));
    if (!writer->Write(chunk)) return absl::CancelledError("the receiver went away");
    offset += n;
    *sent += n;
  }
  return absl::OkStatus();
}

// Fails the RPC unless the worker may call.
#define SHRINK_CHECK_WORKER(context)                                       \
  do {                                                                     \
    if (absl::Status s_ = access_->CheckWorker(*(context)); !s_.ok()) {    \
      return ToGrpcStatus(s_);                                             \
    }                                                                      \
  } while (0)

// Fails the RPC unless a client may call (any tenant).
#define SHRINK_CHECK_CLIENT(context)                                               \
  do {                                                                             \
    if (auto t_ = access_->ClientTenant(*(context)); !t_.ok()) return ToGrpcStatus(t_.status()); \
  } while (0)

// Binds the caller's tenant or fails the RPC (Unauthenticated).
#define SHRINK_CLIENT_TENANT(tenant, context)                           \
  auto tenant##_or = access_->ClientTenant(*(context));                 \
  if (!tenant##_or.ok()) return ToGrpcStatus(tenant##_or.status());     \
  const std::string tenant = *tenant##_or

}  // namespace

absl::StatusOr<v1::Job> CoordinatorService::OwnJob(const grpc::ServerContext& context,
                                                   const std::string& id) {
  SHRINK_ASSIGN_OR_RETURN(std::string tenant, access_->ClientTenant(context));
  auto job = coordinator_->GetJob(id);
  if (!job.ok()) return job.status();
  std::string owner = job->tenant().empty() ? kDefaultTenant : job->tenant();
  // Another tenant's job reads exactly like a job that does not exist.
  if (owner != tenant) return absl::NotFoundError(absl::StrCat("job \"", id, "\" not found"));
  return job;
}

absl::Status ReceiveBlob(grpc::ServerReader<v1::BlobChunk>* reader, BlobStore* store,
                         CoordinatorMetrics* metrics, v1::UploadBlobResponse* response) {
  v1::BlobChunk chunk;
  if (!reader->Read(&chunk)) return absl::InvalidArgumentError("upload had no chunks");
  SHRINK_ASSIGN_OR_RETURN(auto writer, store->StartWrite(chunk.sha256(), chunk.size()));
  response->set_sha256(chunk.sha256());
  response->set_size(chunk.size());
  do {
    SHRINK_RETURN_IF_ERROR(writer->Append(chunk.data().data(), chunk.data().size()));
    if (metrics) metrics->BlobBytesReceived(static_cast<int64_t>(chunk.data().size()));
  } while (reader->Read(&chunk));
  return writer->Commit();
}

grpc::Status CoordinatorService::StatBlobs(grpc::ServerContext* context, const v1::StatBlobsRequest* request,
                                           v1::StatBlobsResponse* response) {
  SHRINK_CHECK_CLIENT(context);
  for (const auto& digest : request->sha256()) {
    if (!coordinator_->blobs()->Has(digest)) response->add_missing(digest);
  }
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::UploadBlob(grpc::ServerContext* context,
                                            grpc::ServerReader<v1::BlobChunk>* reader,
                                            v1::UploadBlobResponse* response) {
  SHRINK_CHECK_CLIENT(context);
  return ToGrpcStatus(ReceiveBlob(reader, coordinator_->blobs(), coordinator_->metrics(), response));
}

grpc::Status CoordinatorService::SubmitJob(grpc::ServerContext* context, const v1::SubmitJobRequest* request,
                                           v1::Job* response) {
  SHRINK_CLIENT_TENANT(tenant, context);
  auto job = coordinator_->SubmitJob(request->spec(), tenant);
  if (!job.ok()) return ToGrpcStatus(job.status());
  *response = *job;
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                                        v1::Job* response) {
  auto job = OwnJob(*context, request->id());
  if (!job.ok()) return ToGrpcStatus(job.status());
  *response = *job;
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest*,
                                          v1::ListJobsResponse* response) {
  SHRINK_CLIENT_TENANT(tenant, context);
  auto jobs = coordinator_->ListJobs();
  if (!jobs.ok()) return ToGrpcStatus(jobs.status());
  for (auto& job : *jobs) {
    if ((job.tenant().empty() ? kDefaultTenant : job.tenant()) == tenant) *response->add_jobs() = std::move(job);
  }
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::WatchJob(grpc::ServerContext* context,
                                          const v1::WatchJobRequest* request,
                                          grpc::ServerWriter<v1::JobEvent>* writer) {
  if (auto own = OwnJob(*context, request->id()); !own.ok()) return ToGrpcStatus(own.status());
  uint64_t version = 0;
  while (!context->IsCancelled()) {
    v1::JobEvent event;
    absl::Status s = coordinator_->WaitForJobChange(request->id(), &version, kStreamPoll, &event);
    if (absl::IsDeadlineExceeded(s)) continue;
    if (!s.ok()) return ToGrpcStatus(s);
    if (!writer->Write(event)) return grpc::Status::OK;  // the client left; it may watch again
    if (IsTerminal(event.job().state())) return grpc::Status::OK;
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled");
}

grpc::Status CoordinatorService::CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request,
                                           v1::Job* response) {
  if (auto own = OwnJob(*context, request->id()); !own.ok()) return ToGrpcStatus(own.status());
  auto job = coordinator_->CancelJob(request->id());
  if (!job.ok()) return ToGrpcStatus(job.status());
  *response = *job;
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::FetchArtifact(grpc::ServerContext* context,
                                               const v1::FetchArtifactRequest* request,
                                               grpc::ServerWriter<v1::ArtifactChunk>* writer) {
  auto job = OwnJob(*context, request->id());
  if (!job.ok()) return ToGrpcStatus(job.status());
  if (job->state() != v1::SUCCEEDED) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("job ", request->id(), " is ", JobStateName(job->state()),
                                     "; only a succeeded job has an artifact"));
  }
  // Resume: skip the files before request->file(), start that one at offset.
  bool started = request->file().empty();
  int64_t sent = 0;
  for (const auto& file : job->artifact_files()) {
    int64_t offset = 0;
    if (!started) {
      if (file.name() != request->file()) continue;
      started = true;
      offset = request->offset();
      if (offset < 0 || offset > file.size()) {
        return grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                            absl::StrCat("offset ", offset, " is outside ", file.name()));
      }
    }
    auto make_chunk = [&file](int64_t at) {
      v1::ArtifactChunk chunk;
      chunk.set_file(file.name());
      chunk.set_offset(at);
      chunk.set_file_size(file.size());
      chunk.set_sha256(file.sha256());
      return chunk;
    };
    if (file.size() == offset) {
      if (!writer->Write(make_chunk(offset))) return grpc::Status::OK;  // empty tail: announce the file
      continue;
    }
    absl::Status s = StreamFile<v1::ArtifactChunk>(coordinator_->blobs()->PathOf(file.sha256()),
                                                   offset, writer, make_chunk, &sent);
    if (!s.ok()) return ToGrpcStatus(s);
  }
  if (!started) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("artifact has no file ", request->file()));
  }
  if (coordinator_->metrics()) coordinator_->metrics()->BlobBytesSent(sent);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ListCandidates(grpc::ServerContext* context,
                                                const v1::ListCandidatesRequest* request,
                                                v1::ListCandidatesResponse* response) {
  if (auto own = OwnJob(*context, request->id()); !own.ok()) return ToGrpcStatus(own.status());
  auto candidates = coordinator_->ListCandidates(request->id());
  if (!candidates.ok()) return ToGrpcStatus(candidates.status());
  for (auto& c : *candidates) *response->add_candidates() = std::move(c);
  return grpc::Status::OK;
}

grpc::Status WorkerPoolService::RegisterWorker(grpc::ServerContext* context,
                                               const v1::RegisterWorkerRequest* request,
                                               v1::RegisterWorkerResponse* response) {
  SHRINK_CHECK_WORKER(context);
  if (request->slots() < 0 || request->slots() > 1024) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "slots must be in [0, 1024]");
  }
  response->set_worker_id(coordinator_->RegisterWorker(*request));
  return grpc::Status::OK;
}

grpc::Status WorkerPoolService::TaskStream(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::WorkerMessage>* stream) {
  SHRINK_CHECK_WORKER(context);
  v1::WorkerMessage first;
  if (!stream->Read(&first)) return grpc::Status(grpc::StatusCode::CANCELLED, "stream closed");
  if (!first.has_hello()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the first message must be hello");
  }
  const std::string worker_id = first.hello().worker_id();
  if (absl::Status s = coordinator_->AttachWorker(worker_id); !s.ok()) return ToGrpcStatus(s);

  // Reads run on their own thread so results are taken while tasks are written.
  std::thread reader([&] {
    v1::WorkerMessage message;
    while (stream->Read(&message)) {
      if (message.has_result()) {
        coordinator_->HandleResult(worker_id, message.result());
      } else if (message.has_heartbeat()) {
        coordinator_->HandleHeartbeat(worker_id, message.heartbeat());
      }
    }
    coordinator_->DetachWorker(worker_id);
  });
  v1::CoordinatorMessage out;
  absl::Time freed_at;
  while (!context->IsCancelled()) {
    auto next = coordinator_->NextMessageForWorker(worker_id, kStreamPoll, &out, &freed_at);
    if (next == Coordinator::Next::kClosed) break;
    if (next != Coordinator::Next::kMessage) continue;
    if (!stream->Write(out)) break;
    if (freed_at != absl::InfinitePast() && coordinator_->metrics()) {
      coordinator_->metrics()->ObserveDispatchLatency(absl::ToDoubleSeconds(absl::Now() - freed_at));
    }
  }
  context->TryCancel();  // unblocks the reader if the worker is still connected
  reader.join();
  coordinator_->DetachWorker(worker_id);
  return grpc::Status::OK;
}

grpc::Status WorkerPoolService::FetchBlob(grpc::ServerContext* context, const v1::FetchBlobRequest* request,
                                          grpc::ServerWriter<v1::BlobChunk>* writer) {
  SHRINK_CHECK_WORKER(context);
  BlobStore* blobs = coordinator_->blobs();
  if (!blobs->Has(request->sha256())) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("no blob ", request->sha256()));
  }
  auto size = blobs->Size(request->sha256());
  if (!size.ok()) return ToGrpcStatus(size.status());
  bool first = true;
  auto make_chunk = [&](int64_t) {
    v1::BlobChunk chunk;
    if (first) {
      chunk.set_sha256(request->sha256());
      chunk.set_size(*size);
      first = false;
    }
    return chunk;
  };
  int64_t sent = 0;
  absl::Status s = StreamFile<v1::BlobChunk>(blobs->PathOf(request->sha256()), 0, writer, make_chunk, &sent);
  if (coordinator_->metrics()) coordinator_->metrics()->BlobBytesSent(sent);
  return ToGrpcStatus(s);
}

grpc::Status WorkerPoolService::UploadBlob(grpc::ServerContext* context,
                                           grpc::ServerReader<v1::BlobChunk>* reader,
                                           v1::UploadBlobResponse* response) {
  SHRINK_CHECK_WORKER(context);
  return ToGrpcStatus(ReceiveBlob(reader, coordinator_->blobs(), coordinator_->metrics(), response));
}

}  // namespace shrink::server
