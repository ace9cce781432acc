// The torch side of device selection (internal: pulls in torch). Models are
// built and compressed on the CPU (checkpoints, pruning, packing stay there);
// the runtime module and every batch it sees move to the model's device.
#pragma once

#include <torch/torch.h>

#include <string>

#include "absl/status/statusor.h"

namespace shrink::worker {

// The torch::Device a validated name stands for (ValidateDevice's errors otherwise).
absl::StatusOr<torch::Device> ParseDevice(const std::string& device);

// "cpu" or "cuda:N": the name ParseDevice reads back.
std::string DeviceName(const torch::Device& device);

// The device of the module's first parameter or buffer; CPU when it has none.
torch::Device ModuleDevice(const torch::nn::Module& module);

// Waits until the device has run every queued kernel (CUDA runs asynchronously, so a
// timer must wait before it stops); nothing to wait for on the CPU.
void SynchronizeDevice(const torch::Device& device);

}  // namespace shrink::worker
