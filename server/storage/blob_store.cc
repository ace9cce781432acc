#include "server/storage/blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status.h"

namespace shrink::server {
namespace {

namespace fs = std::filesystem;

constexpr size_t kCopyBufferBytes = size_t{1} << 20;

std::string ErrnoText(int err) { return std::strerror(err); }

// write(2) until done, retrying short writes and EINTR.
absl::Status WriteAll(int fd, const void* data, size_t n, const std::string& what) {
  const char* cursor = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t written = ::write(fd, cursor, n);
    if (written < 0) {
      if (errno == EINTR) continue;
      return absl::ResourceExhaustedError(absl::StrCat("cannot write ", what, ": ", ErrnoText(errno)));
    }
    cursor += written;
    n -= static_cast<size_t>(written);
  }
  return absl::OkStatus();
}

// Makes a rename inside `dir` durable.
void SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

BlobStore::BlobStore(std::string root)
    : root_(std::move(root)), temp_dir_((fs::path(root_) / "tmp").string()) {}

absl::StatusOr<std::unique_ptr<BlobStore>> BlobStore::Open(const std::string& root) {
  if (root.empty()) return absl::InvalidArgumentError("blob store root folder is empty");
  std::unique_ptr<BlobStore> store(new BlobStore(root));
  // Anything left in tmp/ is an upload a crash interrupted; it can never commit.
  RemoveAll(store->temp_dir_);
  SHRINK_RETURN_IF_ERROR(MakeDirs(store->temp_dir_));
  return store;
}

std::string BlobStore::PathOf(const std::string& sha256) const {
  if (!IsSha256Hex(sha256)) return std::string();
  return (fs::path(root_) / sha256.substr(0, 2) / sha256).string();
}

bool BlobStore::Has(const std::string& sha256) const {
  std::string path = PathOf(sha256);
  if (path.empty()) return false;
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

absl::StatusOr<int64_t> BlobStore::Size(const std::string& sha256) const {
  if (!IsSha256Hex(sha256)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", sha256, "\" is not a sha256 digest (64 lower-case hex characters)"));
  }
  std::error_code ec;
  auto size = fs::file_size(PathOf(sha256), ec);
  if (ec) return absl::NotFoundError(absl::StrCat("blob ", sha256, " not found"));
  return static_cast<int64_t>(size);
}

absl::StatusOr<std::pair<std::string, int>> BlobStore::CreateTempFile(
    const std::string& label) const {
  std::string pattern = (fs::path(temp_dir_) / absl::StrCat(label, ".XXXXXX")).string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  int fd = ::mkostemp(buffer.data(), O_CLOEXEC);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot create temporary blob file in ", temp_dir_, ": ", ErrnoText(errno)));
  }
  ::fchmod(fd, 0644);  // mkstemp makes 0600; blobs are read by other tools too
  return std::make_pair(std::string(buffer.data()), fd);
}

absl::Status BlobStore::Publish(const std::string& sha256, const std::string& temp_path,
                                int fd) const {
  bool synced = ::fsync(fd) == 0;
  int sync_errno = errno;
  if (::close(fd) != 0 || !synced) {
    int err = synced ? errno : sync_errno;
    ::unlink(temp_path.c_str());
    return absl::DataLossError(
        absl::StrCat("cannot flush blob ", sha256, " to disk: ", ErrnoText(err)));
  }
  std::string final_path = PathOf(sha256);
  std::string shard = fs::path(final_path).parent_path().string();
  absl::Status made = MakeDirs(shard);
  if (!made.ok()) {
    ::unlink(temp_path.c_str());
    return made;
  }
  // rename(2) is atomic: readers see no blob or the whole blob. A concurrent upload
  // of the same digest may have won already; its bytes are identical.
  if (::rename(temp_path.c_str(), final_path.c_str()) != 0) {
    int err = errno;
    ::unlink(temp_path.c_str());
    return absl::InternalError(
        absl::StrCat("cannot move blob ", sha256, " into ", final_path, ": ", ErrnoText(err)));
  }
  SyncDirectory(shard);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<BlobStore::Writer>> BlobStore::StartWrite(const std::string& sha256,
                                                                         int64_t size) {
  if (!IsSha256Hex(sha256)) {
    return absl::InvalidArgumentError(
        absl::StrCat("blob digest \"", sha256, "\" is not 64 lower-case hex characters"));
  }
  int64_t limit = max_blob_bytes();
  if (size < 0 || size > limit) {
    return absl::InvalidArgumentError(absl::StrCat("blob ", sha256, ": size ", size,
                                                   " is outside [0, ", limit, "] bytes"));
  }
  SHRINK_ASSIGN_OR_RETURN(auto temp, CreateTempFile(sha256));
  return std::unique_ptr<Writer>(new Writer(this, sha256, size, temp.first, temp.second));
}

absl::StatusOr<std::string> BlobStore::PutFile(const std::string& path) {
  int source = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (source < 0) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", ErrnoText(errno)));
  }
  auto temp = CreateTempFile("import");
  if (!temp.ok()) {
    ::close(source);
    return temp.status();
  }
  const std::string& temp_path = temp->first;
  int fd = temp->second;
  auto fail = [&](absl::Status status) {
    ::close(source);
    ::close(fd);
    ::unlink(temp_path.c_str());
    return status;
  };
  // One pass: copy and hash together, so the digest names exactly the bytes stored
  // even if the source changes meanwhile.
  Sha256 hash;
  std::vector<char> buffer(kCopyBufferBytes);
  int64_t total = 0;
  const int64_t limit = max_blob_bytes();
  for (;;) {
    ssize_t n = ::read(source, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(absl::DataLossError(absl::StrCat("cannot read ", path, ": ", ErrnoText(errno))));
    }
    if (n == 0) break;
    total += n;
    if (total > limit) {
      return fail(absl::ResourceExhaustedError(
          absl::StrCat(path, " is larger than the blob limit of ", limit, " bytes")));
    }
    hash.Update(buffer.data(), static_cast<size_t>(n));
    absl::Status written = WriteAll(fd, buffer.data(), static_cast<size_t>(n), temp_path);
    if (!written.ok()) return fail(written);
  }
  ::close(source);
  std::string digest = hash.HexDigest();
  SHRINK_RETURN_IF_ERROR(Publish(digest, temp_path, fd));
  return digest;
}

BlobStore::Writer::Writer(const BlobStore* store, std::string sha256, int64_t size,
                          std::string temp_path, int fd)
    : store_(store),
      sha256_(std::move(sha256)),
      size_(size),
      temp_path_(std::move(temp_path)),
      fd_(fd) {}

BlobStore::Writer::~Writer() { Abort(); }

void BlobStore::Writer::Abort() {
  if (fd_ < 0) return;
  ::close(fd_);
  ::unlink(temp_path_.c_str());
  fd_ = -1;
}

absl::Status BlobStore::Writer::Append(const void* data, size_t n) {
  if (fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("upload of blob ", sha256_, " is already committed or aborted"));
  }
  if (static_cast<uint64_t>(n) > static_cast<uint64_t>(size_ - written_)) {
    int64_t attempted = written_ + static_cast<int64_t>(n);
    Abort();
    return absl::ResourceExhaustedError(absl::StrCat("blob ", sha256_, ": ", attempted,
                                                     " bytes exceed the declared size of ",
                                                     size_, " bytes"));
  }
  absl::Status written = WriteAll(fd_, data, n, temp_path_);
  if (!written.ok()) {
    Abort();
    return written;
  }
  hash_.Update(data, n);
  written_ += static_cast<int64_t>(n);
  return absl::OkStatus();
}

absl::Status BlobStore::Writer::Commit() {
  if (fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("upload of blob ", sha256_, " is already committed or aborted"));
  }
  if (written_ != size_) {
    Abort();
    return absl::DataLossError(absl::StrCat("blob ", sha256_, ": received ", written_,
                                            " bytes, declared ", size_));
  }
  std::string actual = hash_.HexDigest();
  if (actual != sha256_) {
    Abort();
    return absl::DataLossError(absl::StrCat("blob content does not match its digest: expected ",
                                            sha256_, ", got ", actual));
  }
  int fd = fd_;
  fd_ = -1;  // Publish closes it and removes the temp file on failure
  return store_->Publish(sha256_, temp_path_, fd);
}

}  // namespace shrink::server
