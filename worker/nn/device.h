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

// Sets LibTorch's intra-op threads (0 = all cores) and the ONEDNN quantized engine, and keeps
// freed memory (RetainFreedMemory), so that a latency does not depend on how warm glibc's heap
// is: a fresh `shrink eval` timed the reference CNN (batch 32, 1 thread) at 32 ms against 8 ms in
// a long-running worker, page-faulting its conv buffers in again every pass. Returns the thread
// count now in use. Process-wide; evaluation and training call it themselves.
int ConfigureTorch(int threads);

// Keeps memory that LibTorch frees in this process's heap instead of returning it to the kernel
// (glibc's mmap threshold at its 32 MiB maximum, heap trimming off). A training loop frees and
// reallocates the same activation buffers every step; given back, they are page-faulted in again
// the next step. Pretraining calls it and keeps its activations under 32 MiB (micro-batches):
// together 3.2k -> 5.1k tokens/s on 2 cores; this call alone changed nothing measurable, since
// the larger buffers are mmapped whatever the threshold. Process-wide: the heap stays at its peak.
void RetainFreedMemory();

}  // namespace shrink::worker
