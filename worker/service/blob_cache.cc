#include "worker/service/blob_cache.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/sha256.h"
#include "common/status.h"

namespace shrink::worker {

BlobCache::BlobCache(std::string dir, WorkerMetrics* metrics)
    : dir_(std::move(dir)), metrics_(metrics) {}

absl::StatusOr<std::string> BlobCache::Get(const v1::FileRef& ref,
                                           v1::WorkerPool::StubInterface* stub) {
  if (!IsSha256Hex(ref.sha256())) {
    return absl::InvalidArgumentError(absl::StrCat("file ", ref.name(), ": bad sha256 '", ref.sha256(), "'"));
  }
  std::string path = absl::StrCat(dir_, "/", ref.sha256());
  std::shared_ptr<std::mutex> once;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = fetching_[ref.sha256()];
    if (!slot) slot = std::make_shared<std::mutex>();
    once = slot;
  }
  std::lock_guard<std::mutex> lock(*once);
  if (PathExists(path)) {
    if (metrics_) metrics_->BlobCacheHit();
    return path;
  }
  SHRINK_RETURN_IF_ERROR(Fetch(ref, path, stub));
  return path;
}

absl::Status BlobCache::Fetch(const v1::FileRef& ref, const std::string& path,
                              v1::WorkerPool::StubInterface* stub) {
  SHRINK_RETURN_IF_ERROR(MakeDirs(dir_));
  std::string tmp = absl::StrCat(path, ".part.", getpid());
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp));
  grpc::ClientContext context;
  v1::FetchBlobRequest request;
  request.set_sha256(ref.sha256());
  auto reader = stub->FetchBlob(&context, request);
  Sha256 hash;
  int64_t received = 0;
  v1::BlobChunk chunk;
  while (reader->Read(&chunk)) {
    out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
    hash.Update(chunk.data().data(), chunk.data().size());
    received += static_cast<int64_t>(chunk.data().size());
  }
  out.close();
  grpc::Status status = reader->Finish();
  auto fail = [&](absl::Status s) {
    std::remove(tmp.c_str());
    return s;
  };
  if (!status.ok()) {
    return fail(absl::Status(FromGrpcStatus(status).code(),
                             absl::StrCat("fetching ", ref.name(), ": ", status.error_message())));
  }
  if (!out) return fail(absl::ResourceExhaustedError(absl::StrCat("cannot write ", tmp)));
  std::string digest = hash.HexDigest();
  if (digest != ref.sha256()) {
    return fail(absl::DataLossError(absl::StrCat("fetched ", ref.name(), " hashes to ", digest,
                                                 ", expected ", ref.sha256())));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail(absl::InternalError(absl::StrCat("cannot move ", tmp, " into the cache")));
  }
  if (metrics_) metrics_->BlobFetched(received);
  return absl::OkStatus();
}

}  // namespace shrink::worker
