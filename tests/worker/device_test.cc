// Device selection: names are validated, a GPU that this LibTorch or machine lacks is
// refused with a clear error, models report and keep their device. Passes without a
// GPU; where one is visible, the GPU-only case also compares it with the CPU.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/policy.h"
#include "tests/worker/transformer_test_util.h"
#include "worker/nn/device.h"
#include "worker/nn/int8_linear.h"
#include "worker/nn/torch_device.h"

namespace shrink::worker {
namespace {

using testing::TempDir;

TEST(DeviceTest, ValidatesNames) {
  EXPECT_TRUE(ValidateDevice("cpu").ok());
  for (const std::string bad : {"", "gpu", "CPU", "cuda:", "cuda:x", "cuda:-1", "cuda:1:2", "cuda0"}) {
    absl::Status status = ValidateDevice(bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(status.message().find("\"" + bad + "\""), std::string::npos) << status;
  }
  EXPECT_EQ(DeviceName(*ParseDevice("cpu")), "cpu");
}

TEST(DeviceTest, RefusesAGpuItCannotUse) {
  if (CudaDeviceCount() == 0) {
    // Debian's LibTorch is CPU-only: every CUDA device is refused, saying why.
    for (const std::string name : {"cuda", "cuda:0", "cuda:1"}) {
      absl::Status status = ValidateDevice(name);
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << name;
      EXPECT_NE(status.message().find("torch::cuda::is_available() is false"), std::string::npos) << status;
    }
  }
  absl::Status missing = ValidateDevice("cuda:99");
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.message().find("cuda:99 is not available"), std::string::npos) << missing;
}

TEST(DeviceTest, ModelsLoadOnTheirDeviceAndCompressedOnesStayThere) {
  TempDir dir;
  auto model = testing::TinyTransformer(TransformerFamily::kBert, dir.path());
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->Device(), "cpu");
  auto policy = ParsePolicyJson(R"({"uniform": {"prune": 0.5, "bits": 8}})");
  ASSERT_TRUE(policy.ok());
  auto compressed = model->Apply(*policy);
  ASSERT_TRUE(compressed.ok()) << compressed.status();
  EXPECT_EQ((*compressed)->Device(), "cpu");
  auto bad = Model::Load(dir.path(), "tpu:0");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  if (CudaDeviceCount() == 0) {
    auto refused = Model::Load(dir.path(), "cuda:0");
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(refused.status().message().find("is_available() is false"), std::string::npos) << refused.status();
  }
  // The GPU form of a stored-int8 layer exists only off the CPU.
  torch::Tensor w = torch::randn({4, 3});
  EXPECT_FALSE(Int8Linear::CreateOnDevice(w, torch::zeros({4}), torch::kCPU).ok());
}

// Only where a GPU is visible (bench/cuda_check.sh on a GPU machine): the same int8 model
// computes on cuda:0 what it computes on the CPU, within the int8 kernels' error.
TEST(DeviceTest, GpuComputesWhatTheCpuComputes) {
  if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device in this process";
  TempDir dir;
  auto cpu = testing::TinyTransformer(TransformerFamily::kGpt2, dir.path());
  ASSERT_NE(cpu, nullptr);
  auto gpu = Model::Load(dir.path(), "cuda:0");
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  EXPECT_EQ((*gpu)->Device(), "cuda:0");
  auto policy = ParsePolicyJson(R"({"uniform": {"prune": 0.25, "bits": 8}})");
  ASSERT_TRUE(policy.ok());
  auto a = cpu->Apply(*policy);
  auto b = (*gpu)->Apply(*policy);
  ASSERT_TRUE(a.ok() && b.ok());
  auto [ids, mask] = testing::TinyBatch();
  torch::Tensor x = testing::TransformerLogits(**a, ids, mask);
  torch::Tensor y = testing::TransformerLogits(**b, ids.to(torch::kCUDA), mask.to(torch::kCUDA)).cpu();
  EXPECT_LT((x - y).abs().max().item<double>(), 0.1 * x.abs().max().item<double>());
}

}  // namespace
}  // namespace shrink::worker
