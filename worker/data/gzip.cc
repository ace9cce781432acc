// gzip through zlib's inflate, growing the output in 64 KiB chunks.
#include "worker/data/gzip.h"

#include <zlib.h>

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace shrink::worker {

bool IsGzip(const std::string& bytes) {
  return bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x1f && static_cast<uint8_t>(bytes[1]) == 0x8b;
}

absl::StatusOr<std::string> Gunzip(const std::string& compressed, const std::string& what) {
  z_stream stream{};
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) return absl::InternalError("zlib inflateInit2 failed");
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  stream.avail_in = static_cast<uInt>(compressed.size());
  std::string out;
  char chunk[1 << 16];
  int rc = Z_OK;
  while (rc == Z_OK) {
    stream.next_out = reinterpret_cast<Bytef*>(chunk);
    stream.avail_out = sizeof(chunk);
    rc = inflate(&stream, Z_NO_FLUSH);
    out.append(chunk, sizeof(chunk) - stream.avail_out);
    if (rc == Z_BUF_ERROR && stream.avail_in == 0) break;  // input ended before the stream did
  }
  std::string detail = stream.msg ? stream.msg : "";
  inflateEnd(&stream);
  if (rc != Z_STREAM_END) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": gzip data is corrupt or truncated",
        detail.empty() ? "" : absl::StrCat(" (", detail, ")"), " after ", out.size(), " decompressed bytes"));
  }
  return out;
}

}  // namespace shrink::worker
