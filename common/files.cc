#include "common/files.h"

#include <fcntl.h>
#include <ftw.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "absl/strings/str_cat.h"

namespace shrink {
namespace fs = std::filesystem;

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  // Plain read(2): `ostream << rdbuf()` swallowed read errors, so a directory
  // (EISDIR) or an I/O error came back as an OK empty string.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  std::string out;
  std::string buf(1 << 16, '\0');
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return absl::DataLossError(absl::StrCat("error reading ", path, ": ", std::strerror(err)));
    }
    if (n == 0) break;
    out.append(buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

absl::Status WriteFileAtomic(const std::string& path, const std::string& contents) {
  std::string tmp = absl::StrCat(path, ".tmp.", getpid(), ".", std::random_device{}());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    // The code follows errno: a missing directory is NotFound, not PermissionDenied.
    int err = errno;
    return absl::Status(absl::ErrnoToStatusCode(err),
                        absl::StrCat("cannot write ", path, ": cannot create ", tmp, ": ",
                                     std::strerror(err)));
  }
  const char* data = contents.data();
  size_t left = contents.size();
  while (left > 0) {
    ssize_t n = ::write(fd, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot write ", path, ": ", std::strerror(err)));
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
  // Close even when fsync fails, or the descriptor leaks.
  int err = ::fsync(fd) != 0 ? errno : 0;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    return absl::DataLossError(absl::StrCat("cannot flush ", path, ": ", std::strerror(err)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    ::unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot rename into ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

absl::Status MakeDirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create directory ", path, ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<int64_t> FileSize(const std::string& path) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("cannot stat ", path, ": ", ec.message()));
  return static_cast<int64_t>(size);
}

absl::StatusOr<int64_t> DirectoryBytes(const std::string& dir) {
  std::error_code ec;
  int64_t total = 0;
  // Non-throwing forms throughout: a file removed while we list (another
  // writer's temp file being renamed) must not throw out of a Status API.
  fs::directory_iterator it(dir, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    std::error_code entry_ec;
    if (!it->is_regular_file(entry_ec)) continue;
    auto size = it->file_size(entry_ec);
    if (!entry_ec) total += static_cast<int64_t>(size);
  }
  if (ec) return absl::NotFoundError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  return total;
}

absl::StatusOr<std::string> MakeTempDir(const std::string& prefix, const std::string& parent) {
  std::string base = parent.empty() ? fs::temp_directory_path().string() : parent;
  std::string templ = absl::StrCat(base, "/", prefix, "XXXXXX");
  if (::mkdtemp(templ.data()) == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create temp dir under ", base, ": ", std::strerror(errno)));
  }
  return templ;
}

namespace {
int RemoveEntry(const char* path, const struct stat*, int, struct FTW*) {
  ::remove(path);  // best effort, as before: keep going past entries that cannot go
  return 0;
}
}  // namespace

void RemoveAll(const std::string& path) {
  // nftw, not std::filesystem::remove_all: pip's PyTorch 2.x libtorch.so exports its own copy of
  // remove_all (from its toolchain's static libstdc++ part), loaded before libstdc++, and that
  // copy segfaulted when our call bound to it (torch 2.11, seen on a GPU machine).
  ::nftw(path.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS);
}

bool PathExists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

}  // namespace shrink
