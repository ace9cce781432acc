// The gRPC layer: thin adapters from the two services onto Coordinator.
// Every handler converts absl::Status to grpc::Status in one place (ToGrpcStatus).
#pragma once

#include "server/access.h"
#include "server/coordinator.h"
#include "shrink/v1/coordinator.grpc.pb.h"
#include "shrink/v1/worker_pool.grpc.pb.h"

namespace shrink::server {

// Size of the data chunks blobs and artifacts are streamed in.
inline constexpr size_t kChunkBytes = 1 << 20;

// Client-facing API. Thread-safe (all state lives in Coordinator).
class CoordinatorService final : public v1::Coordinator::Service {
 public:
  // Every call is checked against `access`; a job of another tenant is NotFound.
  CoordinatorService(Coordinator* coordinator, const Access* access)
      : coordinator_(coordinator), access_(access) {}

  grpc::Status StatBlobs(grpc::ServerContext*, const v1::StatBlobsRequest*, v1::StatBlobsResponse*) override;
  grpc::Status UploadBlob(grpc::ServerContext*, grpc::ServerReader<v1::BlobChunk>*, v1::UploadBlobResponse*) override;
  grpc::Status SubmitJob(grpc::ServerContext*, const v1::SubmitJobRequest*, v1::Job*) override;
  grpc::Status GetJob(grpc::ServerContext*, const v1::GetJobRequest*, v1::Job*) override;
  grpc::Status ListJobs(grpc::ServerContext*, const v1::ListJobsRequest*, v1::ListJobsResponse*) override;
  grpc::Status WatchJob(grpc::ServerContext*, const v1::WatchJobRequest*, grpc::ServerWriter<v1::JobEvent>*) override;
  grpc::Status CancelJob(grpc::ServerContext*, const v1::CancelJobRequest*, v1::Job*) override;
  grpc::Status FetchArtifact(grpc::ServerContext*, const v1::FetchArtifactRequest*, grpc::ServerWriter<v1::ArtifactChunk>*) override;
  grpc::Status ListCandidates(grpc::ServerContext*, const v1::ListCandidatesRequest*, v1::ListCandidatesResponse*) override;

 private:
  // The caller's job `id`, or NotFound if it belongs to another tenant.
  absl::StatusOr<v1::Job> OwnJob(const grpc::ServerContext& context, const std::string& id);

  Coordinator* coordinator_;
  const Access* access_;
};

// Worker-facing API. Thread-safe.
class WorkerPoolService final : public v1::WorkerPool::Service {
 public:
  // Every call needs access->CheckWorker.
  WorkerPoolService(Coordinator* coordinator, const Access* access)
      : coordinator_(coordinator), access_(access) {}

  grpc::Status RegisterWorker(grpc::ServerContext*, const v1::RegisterWorkerRequest*, v1::RegisterWorkerResponse*) override;
  grpc::Status TaskStream(grpc::ServerContext*, grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::WorkerMessage>*) override;
  grpc::Status FetchBlob(grpc::ServerContext*, const v1::FetchBlobRequest*, grpc::ServerWriter<v1::BlobChunk>*) override;
  grpc::Status UploadBlob(grpc::ServerContext*, grpc::ServerReader<v1::BlobChunk>*, v1::UploadBlobResponse*) override;

 private:
  Coordinator* coordinator_;
  const Access* access_;
};

// Receives one blob from a client-streaming upload into the store.
absl::Status ReceiveBlob(grpc::ServerReader<v1::BlobChunk>* reader, BlobStore* store,
                         CoordinatorMetrics* metrics, v1::UploadBlobResponse* response);

}  // namespace shrink::server
