// Where a model computes, chosen at run time: "cpu" or "cuda:N" ("cuda" = "cuda:0").
// Torch-free, so flag parsing (shrink-worker --device) can validate early.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace shrink::worker {

// OK when `device` names a device this process can use; otherwise InvalidArgument saying
// why: malformed name, a LibTorch built without CUDA, no GPU visible, or no such GPU index.
absl::Status ValidateDevice(const std::string& device);

// GPUs this LibTorch can use (0 in a CPU-only build or on a machine without one).
int CudaDeviceCount();

// Sets LibTorch's intra-op threads (0 = all cores) and the ONEDNN quantized engine;
// returns the thread count now in use. Process-wide; evaluation and training call it themselves.
int ConfigureTorch(int threads);

}  // namespace shrink::worker
