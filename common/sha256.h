// SHA-256 digests, the names of content-addressed blobs.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace shrink {

// Incremental SHA-256; lower-case hex digest.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* data, size_t size);
  void Update(const std::string& data) { Update(data.data(), data.size()); }
  std::string HexDigest();  // finishes the hash

 private:
  struct State;
  State* state_;
};

// Digest of a string.
std::string Sha256Hex(const std::string& data);

// Digest of a file, streamed.
absl::StatusOr<std::string> Sha256File(const std::string& path);

// True for 64 lower-case hex characters.
bool IsSha256Hex(const std::string& s);

}  // namespace shrink
