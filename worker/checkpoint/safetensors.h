// Safetensors checkpoint format, torch-free: an 8-byte little-endian header
// length, a JSON header naming each tensor's dtype, shape and byte range, then
// the raw little-endian data. Shared by every model family (CNN, BERT, GPT-2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace shrink::worker {

// Element types as spelled in safetensors headers.
enum class SafetensorsDtype { kBool, kU8, kI8, kI16, kU16, kF16, kBF16, kI32, kU32, kF32, kI64, kU64, kF64 };

// Bytes per element of `dtype`.
int64_t DtypeSize(SafetensorsDtype dtype);

// The header spelling of `dtype`, e.g. "F32".
std::string DtypeName(SafetensorsDtype dtype);

// Parses a header spelling; InvalidArgument for unknown names.
absl::StatusOr<SafetensorsDtype> ParseDtype(const std::string& name);

// A tensor to be written: owns its bytes (little-endian, row-major).
struct SafetensorsTensor {
  SafetensorsDtype dtype = SafetensorsDtype::kF32;
  std::vector<int64_t> shape;
  std::string bytes;
};

// A tensor inside an open file: points into the file's mapping, valid while
// the SafetensorsFile lives. `data` has no alignment guarantee.
struct SafetensorsTensorView {
  SafetensorsDtype dtype = SafetensorsDtype::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  int64_t size = 0;  // bytes
  int64_t offset = 0;  // byte offset of the data inside the file
};

// A validated, read-only safetensors file (memory-mapped when opened from a path).
class SafetensorsFile {
 public:
  // Maps and validates the file at `path`; errors name the file, the tensor and the byte offset.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);

  // Validates an in-memory image of a file; `origin` names it in errors.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> FromBytes(std::string bytes,
                                                                    const std::string& origin = "<memory>");

  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  // The tensors by name (sorted).
  const std::map<std::string, SafetensorsTensorView>& tensors() const { return tensors_; }

  // The optional "__metadata__" string map.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The tensor called `name`, or nullptr.
  const SafetensorsTensorView* Find(const std::string& name) const;

 private:
  SafetensorsFile() = default;
  absl::Status Parse(const std::string& origin);

  const uint8_t* data_ = nullptr;
  int64_t size_ = 0;
  void* mapping_ = nullptr;  // munmap'ed on destruction when set
  std::string owned_bytes_;  // backing store for FromBytes
  std::map<std::string, SafetensorsTensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// The bytes of a safetensors file holding `tensors` (and `metadata` when not empty).
absl::StatusOr<std::string> SerializeSafetensors(const std::map<std::string, SafetensorsTensor>& tensors,
                                                 const std::map<std::string, std::string>& metadata = {});

// Writes a safetensors file atomically (temp file + rename).
absl::Status WriteSafetensors(const std::string& path,
                              const std::map<std::string, SafetensorsTensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

}  // namespace shrink::worker
