// The worker's local cache of content-addressed blobs (models, data),
// fetched once from the coordinator and verified by sha256.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "shrink/v1/worker_pool.grpc.pb.h"
#include "worker/service/worker_metrics.h"

namespace shrink::worker {

// Thread-safe; concurrent requests for the same blob fetch it once.
class BlobCache {
 public:
  BlobCache(std::string dir, WorkerMetrics* metrics);

  // Local path of the blob named by `ref`, fetched through `stub` if missing.
  // DataLoss when the received bytes do not hash to ref.sha256().
  absl::StatusOr<std::string> Get(const v1::FileRef& ref, v1::WorkerPool::StubInterface* stub);

  const std::string& dir() const { return dir_; }

 private:
  absl::Status Fetch(const v1::FileRef& ref, const std::string& path,
                     v1::WorkerPool::StubInterface* stub);

  const std::string dir_;
  WorkerMetrics* const metrics_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<std::mutex>> fetching_;  // per digest
};

}  // namespace shrink::worker
