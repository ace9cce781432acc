#include "worker/checkpoint/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status.h"

namespace shrink::worker {
namespace {

using Json = nlohmann::json;

constexpr int64_t kHeaderLengthBytes = 8;
// Same bound as the reference implementation: a header this large is corrupt, not big.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeEntry {
  SafetensorsDtype dtype;
  const char* name;
  int64_t size;
};

constexpr DtypeEntry kDtypes[] = {
    {SafetensorsDtype::kBool, "BOOL", 1}, {SafetensorsDtype::kU8, "U8", 1},
    {SafetensorsDtype::kI8, "I8", 1},     {SafetensorsDtype::kI16, "I16", 2},
    {SafetensorsDtype::kU16, "U16", 2},   {SafetensorsDtype::kF16, "F16", 2},
    {SafetensorsDtype::kBF16, "BF16", 2}, {SafetensorsDtype::kI32, "I32", 4},
    {SafetensorsDtype::kU32, "U32", 4},   {SafetensorsDtype::kF32, "F32", 4},
    {SafetensorsDtype::kI64, "I64", 8},   {SafetensorsDtype::kU64, "U64", 8},
    {SafetensorsDtype::kF64, "F64", 8},
};

const DtypeEntry& Entry(SafetensorsDtype dtype) {
  for (const auto& entry : kDtypes) {
    if (entry.dtype == dtype) return entry;
  }
  return kDtypes[0];  // unreachable: every enumerator is listed
}

// Product of `shape` times `element_size`, or -1 on overflow.
int64_t ByteSize(const std::vector<int64_t>& shape, int64_t element_size) {
  int64_t total = element_size;
  for (int64_t dim : shape) {
    if (dim != 0 && total > std::numeric_limits<int64_t>::max() / dim) return -1;
    total *= dim;
  }
  return total;
}

// Reads a non-negative integer JSON value, or -1.
int64_t NonNegative(const Json& value) {
  if (value.is_number_unsigned()) {
    uint64_t v = value.get<uint64_t>();
    return v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? -1 : static_cast<int64_t>(v);
  }
  if (value.is_number_integer()) {
    int64_t v = value.get<int64_t>();
    return v < 0 ? -1 : v;
  }
  return -1;
}

}  // namespace

int64_t DtypeSize(SafetensorsDtype dtype) { return Entry(dtype).size; }

std::string DtypeName(SafetensorsDtype dtype) { return Entry(dtype).name; }

absl::StatusOr<SafetensorsDtype> ParseDtype(const std::string& name) {
  for (const auto& entry : kDtypes) {
    if (name == entry.name) return entry.dtype;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown safetensors dtype \"", name, "\""));
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string message = absl::StrCat(path, ": cannot open: ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(message) : absl::InvalidArgumentError(message);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->size_ = st.st_size;
  if (st.st_size > 0) {
    void* mapping = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      return absl::InternalError(absl::StrCat(path, ": mmap failed: ", std::strerror(err)));
    }
    file->mapping_ = mapping;
    file->data_ = static_cast<const uint8_t*>(mapping);
  }
  ::close(fd);  // the mapping stays valid without the descriptor
  auto status = file->Parse(path);
  if (!status.ok()) return status;
  return file;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::FromBytes(std::string bytes,
                                                                            const std::string& origin) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->owned_bytes_ = std::move(bytes);
  file->data_ = reinterpret_cast<const uint8_t*>(file->owned_bytes_.data());
  file->size_ = static_cast<int64_t>(file->owned_bytes_.size());
  auto status = file->Parse(origin);
  if (!status.ok()) return status;
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, static_cast<size_t>(size_));
}

const SafetensorsTensorView* SafetensorsFile::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

absl::Status SafetensorsFile::Parse(const std::string& origin) {
  auto invalid = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": ", parts...));
  };
  if (size_ < kHeaderLengthBytes) {
    return invalid("truncated: ", size_, " bytes, the 8-byte header length needs at least 8");
  }
  uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | data_[i];  // little-endian
  const uint64_t available = static_cast<uint64_t>(size_ - kHeaderLengthBytes);
  if (header_length == 0 || header_length > kMaxHeaderBytes || header_length > available) {
    return invalid("header length ", header_length, " at byte offset 0 does not fit the file (",
                   available, " bytes follow the length)");
  }
  const char* header_begin = reinterpret_cast<const char*>(data_ + kHeaderLengthBytes);
  Json header = Json::parse(header_begin, header_begin + header_length, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return invalid("header (byte offset 8) is not valid JSON");
  if (!header.is_object()) return invalid("header (byte offset 8) is not a JSON object");

  const int64_t data_start = kHeaderLengthBytes + static_cast<int64_t>(header_length);
  const int64_t data_size = size_ - data_start;
  struct Range {
    int64_t begin, end;
    std::string name;
  };
  std::vector<Range> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const Json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) return invalid("__metadata__ is not an object");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) return invalid("__metadata__ value \"", m.key(), "\" is not a string");
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!entry.is_object()) return invalid("tensor \"", name, "\": entry is not an object");
    auto dtype_it = entry.find("dtype");
    if (dtype_it == entry.end() || !dtype_it->is_string()) return invalid("tensor \"", name, "\": missing dtype");
    auto dtype = ParseDtype(dtype_it->get<std::string>());
    if (!dtype.ok()) return invalid("tensor \"", name, "\": ", dtype.status().message());
    auto shape_it = entry.find("shape");
    if (shape_it == entry.end() || !shape_it->is_array()) return invalid("tensor \"", name, "\": missing shape");
    SafetensorsTensorView view;
    view.dtype = *dtype;
    for (const Json& dim : *shape_it) {
      int64_t d = NonNegative(dim);
      if (d < 0) return invalid("tensor \"", name, "\": shape ", shape_it->dump(), " has a bad dimension");
      view.shape.push_back(d);
    }
    auto offsets_it = entry.find("data_offsets");
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
      return invalid("tensor \"", name, "\": data_offsets must be [begin, end]");
    }
    int64_t begin = NonNegative((*offsets_it)[0]);
    int64_t end = NonNegative((*offsets_it)[1]);
    if (begin < 0 || end < 0 || begin > end) {
      return invalid("tensor \"", name, "\": bad data_offsets ", offsets_it->dump());
    }
    if (end > data_size) {
      return invalid("tensor \"", name, "\": data_offsets [", begin, ", ", end,
                     "] run past the data region (", data_size, " bytes from byte offset ", data_start,
                     "; the tensor would end at byte offset ", data_start + end, ")");
    }
    int64_t expected = ByteSize(view.shape, DtypeSize(view.dtype));
    if (expected != end - begin) {
      return invalid("tensor \"", name, "\": ", DtypeName(view.dtype), " ", shape_it->dump(), " needs ",
                     expected, " bytes but data_offsets [", begin, ", ", end, "] hold ", end - begin);
    }
    view.data = data_ + data_start + begin;
    view.size = end - begin;
    view.offset = data_start + begin;
    ranges.push_back({begin, end, name});
    tensors_.emplace(name, std::move(view));
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  for (size_t i = 1; i < ranges.size(); ++i) {
    // Empty tensors occupy no bytes and cannot overlap anything.
    if (ranges[i].begin == ranges[i].end || ranges[i - 1].begin == ranges[i - 1].end) continue;
    if (ranges[i].begin < ranges[i - 1].end) {
      return invalid("tensor \"", ranges[i].name, "\" (data from byte offset ", data_start + ranges[i].begin,
                     ") overlaps tensor \"", ranges[i - 1].name, "\" (ends at byte offset ",
                     data_start + ranges[i - 1].end, ")");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SerializeSafetensors(const std::map<std::string, SafetensorsTensor>& tensors,
                                                 const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  int64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") return absl::InvalidArgumentError("a tensor cannot be called __metadata__");
    int64_t expected = ByteSize(tensor.shape, DtypeSize(tensor.dtype));
    if (expected != static_cast<int64_t>(tensor.bytes.size())) {
      return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\": ", DtypeName(tensor.dtype),
                                                     " shape needs ", expected, " bytes, got ",
                                                     tensor.bytes.size()));
    }
    header[name] = {{"dtype", DtypeName(tensor.dtype)},
                    {"shape", tensor.shape},
                    {"data_offsets", {offset, offset + expected}}};
    offset += expected;
  }
  std::string header_text = header.dump();
  // Pad with spaces so the data region starts 8-byte aligned, as the reference writer does.
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  std::string out;
  out.reserve(8 + header_text.size() + static_cast<size_t>(offset));
  uint64_t length = header_text.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((length >> (8 * i)) & 0xff));
  out += header_text;
  for (const auto& [name, tensor] : tensors) out += tensor.bytes;
  return out;
}

absl::Status WriteSafetensors(const std::string& path,
                              const std::map<std::string, SafetensorsTensor>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  SHRINK_ASSIGN_OR_RETURN(std::string bytes, SerializeSafetensors(tensors, metadata));
  return WriteFileAtomic(path, bytes);
}

}  // namespace shrink::worker
