// Fuzz target: the safetensors reader (worker/safetensors) on in-memory
// images. Every tensor view it accepts must lie inside the image.
#include <cstddef>
#include <cstdint>
#include <string>

#include "worker/checkpoint/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = shrink::worker::SafetensorsFile::FromBytes(std::string(reinterpret_cast<const char*>(data), size));
  if (!file.ok()) return 0;
  for (const auto& [name, view] : (*file)->tensors()) {
    if (view.offset < 0 || view.size < 0 || view.offset + view.size > static_cast<int64_t>(size)) __builtin_trap();
    // Touch the first and last byte: out-of-bounds views fail under ASan.
    volatile uint8_t sink = 0;
    if (view.size > 0) sink = static_cast<uint8_t>(view.data[0] ^ view.data[view.size - 1]);
    (void)sink;
  }
  return 0;
}
