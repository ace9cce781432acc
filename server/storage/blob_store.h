// Content-addressed files (model weights, datasets, artifacts) that move between
// the client, the coordinator and workers, named by their SHA-256.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/sha256.h"

namespace shrink::server {

// Blobs live at `<root>/<sha256[0:2]>/<sha256>`; uploads are written to
// `<root>/tmp/` and renamed into place only after their size and digest check
// out, so a blob that is visible is always complete and correct.
//
// Thread-safety: every BlobStore method may be called from any thread. Several
// uploads of the same digest may run at once; the first commit wins and the rest
// find it in place. One BlobStore per root: Open clears `<root>/tmp/`, which only
// holds leftovers of uploads interrupted by a crash. A Writer is one upload and
// is used by one thread at a time.
class BlobStore {
 public:
  // Opens (creating if needed) the store rooted at `root`.
  static absl::StatusOr<std::unique_ptr<BlobStore>> Open(const std::string& root);

  // True when a committed blob with this digest exists.
  bool Has(const std::string& sha256) const;

  // Size in bytes of a committed blob; NotFound naming the digest.
  absl::StatusOr<int64_t> Size(const std::string& sha256) const;

  // Where the blob lives (may not exist); empty for a string that is not a digest,
  // so a hostile name never reaches the filesystem.
  std::string PathOf(const std::string& sha256) const;

  // One upload: append the bytes, then Commit. Destroying an uncommitted Writer
  // aborts the upload and removes its temporary file.
  class Writer {
   public:
    ~Writer();
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    // Appends bytes; ResourceExhausted beyond the declared size,
    // FailedPrecondition after Commit or a failure.
    absl::Status Append(const void* data, size_t n);

    // Verifies size and sha256 (DataLoss naming both digests if different),
    // fsyncs, renames into place. On failure nothing becomes visible.
    absl::Status Commit();

    // Bytes appended so far.
    int64_t bytes_written() const { return written_; }

   private:
    friend class BlobStore;
    Writer(const BlobStore* store, std::string sha256, int64_t size, std::string temp_path, int fd);
    void Abort();

    const BlobStore* store_;
    const std::string sha256_;
    const int64_t size_;
    const std::string temp_path_;
    int fd_;  // -1 once committed or aborted
    int64_t written_ = 0;
    Sha256 hash_;
  };

  // Starts an upload of a blob with an expected digest and size. InvalidArgument
  // if the digest is not 64 lower-case hex or size < 0 or > max_blob_bytes.
  absl::StatusOr<std::unique_ptr<Writer>> StartWrite(const std::string& sha256, int64_t size);

  // Stores a copy of a local file and returns its digest (used by embedded mode
  // and tests). ResourceExhausted if it is larger than max_blob_bytes.
  absl::StatusOr<std::string> PutFile(const std::string& path);

  // Largest blob accepted; default 4 GiB.
  void set_max_blob_bytes(int64_t n) { max_blob_bytes_.store(n); }
  int64_t max_blob_bytes() const { return max_blob_bytes_.load(); }

  // The store's root folder.
  const std::string& root() const { return root_; }

 private:
  explicit BlobStore(std::string root);
  // Opens a fresh temporary file under <root>/tmp.
  absl::StatusOr<std::pair<std::string, int>> CreateTempFile(const std::string& sha256) const;
  // Fsyncs and closes `fd`, then renames `temp_path` to the blob's place.
  absl::Status Publish(const std::string& sha256, const std::string& temp_path, int fd) const;

  const std::string root_;
  const std::string temp_dir_;
  std::atomic<int64_t> max_blob_bytes_{int64_t{4} << 30};
};

}  // namespace shrink::server
