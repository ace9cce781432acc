// Uploading a file as a content-addressed blob. The client (Coordinator
// service) and the worker (WorkerPool service) share it: both stubs have an
// UploadBlob(stream BlobChunk) method.
#pragma once

#include <grpcpp/client_context.h>

#include <chrono>
#include <fstream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/sha256.h"
#include "common/status.h"
#include "shrink/v1/coordinator.pb.h"
#include "shrink/v1/types.pb.h"

namespace shrink {

// Bytes per upload message.
inline constexpr size_t kUploadChunkBytes = 1 << 20;

// Describes a local file as a FileRef named `name` (hashes it).
inline absl::StatusOr<v1::FileRef> DescribeFile(const std::string& path, const std::string& name) {
  v1::FileRef ref;
  ref.set_name(name);
  SHRINK_ASSIGN_OR_RETURN(std::string digest, Sha256File(path));
  ref.set_sha256(digest);
  SHRINK_ASSIGN_OR_RETURN(int64_t size, FileSize(path));
  ref.set_size(size);
  return ref;
}

// Streams the file at `path`, already described by `ref`, through stub->UploadBlob.
template <typename Stub>
absl::Status UploadFile(Stub* stub, const std::string& path, const v1::FileRef& ref) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  grpc::ClientContext context;
  // A minute plus one second per MiB: generous for a slow link, finite for a dead one.
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60 + (ref.size() >> 20)));
  v1::UploadBlobResponse response;
  auto writer = stub->UploadBlob(&context, &response);
  std::string buffer(kUploadChunkBytes, '\0');
  bool first = true;
  while (true) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    std::streamsize n = in.gcount();
    if (n <= 0 && !first) break;
    v1::BlobChunk chunk;
    if (first) {
      chunk.set_sha256(ref.sha256());
      chunk.set_size(ref.size());
      first = false;
    }
    chunk.set_data(buffer.data(), static_cast<size_t>(std::max<std::streamsize>(n, 0)));
    if (!writer->Write(chunk)) break;  // the server ended early; Finish says why
    if (n <= 0) break;
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (!status.ok()) {
    return absl::Status(FromGrpcStatus(status).code(),
                        absl::StrCat("uploading ", ref.name(), ": ", status.error_message()));
  }
  return absl::OkStatus();
}

}  // namespace shrink
