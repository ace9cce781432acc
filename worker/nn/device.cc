#include "worker/nn/device.h"

#include <torch/cuda.h>

#include <malloc.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "worker/nn/int8_linear.h"
#include "worker/nn/torch_device.h"

namespace shrink::worker {

int CudaDeviceCount() { return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0; }

absl::StatusOr<torch::Device> ParseDevice(const std::string& device) {
  if (device == "cpu") return torch::Device(torch::kCPU);
  absl::string_view rest(device);
  int index = 0;
  if (rest == "cuda") {
    index = 0;
  } else if (absl::ConsumePrefix(&rest, "cuda:")) {
    const bool digits = std::all_of(rest.begin(), rest.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    if (rest.empty() || rest.size() > 3 || !digits || !absl::SimpleAtoi(rest, &index)) {
      return absl::InvalidArgumentError(absl::StrCat("\"", device, "\": the GPU index must be a number, as in cuda:0"));
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat("\"", device, "\" is not a device (cpu, cuda or cuda:N)"));
  }
  // A CPU-only LibTorch (Debian's) answers false here without touching any driver.
  if (!torch::cuda::is_available()) {
    return absl::InvalidArgumentError(absl::StrCat(
        device, " is not available: torch::cuda::is_available() is false (this LibTorch is a CPU-only build, or no "
        "GPU driver is visible); use cpu, or build against a CUDA LibTorch on a machine with a GPU"));
  }
  const int count = CudaDeviceCount();
  if (index >= count) {
    return absl::InvalidArgumentError(
        absl::StrCat(device, " is not available: this machine has ", count, " CUDA device(s) (cuda:0..cuda:", count - 1, ")"));
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

absl::Status ValidateDevice(const std::string& device) { return ParseDevice(device).status(); }

std::string DeviceName(const torch::Device& device) {
  if (device.is_cpu()) return "cpu";
  return absl::StrCat(device.is_cuda() ? "cuda" : c10::DeviceTypeName(device.type(), /*lower_case=*/true), ":",
                      device.has_index() ? device.index() : 0);
}

torch::Device ModuleDevice(const torch::nn::Module& module) {
  for (const auto& parameter : module.parameters()) return parameter.device();
  for (const auto& buffer : module.buffers()) return buffer.device();
  return torch::kCPU;
}

void SynchronizeDevice(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

int ConfigureTorch(int threads) {
  const int wanted = threads > 0 ? threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  if (at::get_num_threads() != wanted) at::set_num_threads(wanted);
  (void)UseOnednnEngine();  // builds without ONEDNN fail later, where int8 is actually needed
  RetainFreedMemory();
  return at::get_num_threads();
}

void RetainFreedMemory() {
  // glibc's largest allowed mmap threshold (32 MiB on 64-bit) and a trim threshold it never reaches.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
}

}  // namespace shrink::worker
