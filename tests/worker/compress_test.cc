// Compression: structural pruning equals masking, quantized storage and reload, errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>

#include <nlohmann/json.hpp>
#include <thread>

#include "common/files.h"
#include "common/policy.h"
#include "tests/worker/model_test_util.h"
#include "worker/compress/cnn_compress.h"
#include "worker/data/fashion_mnist.h"
#include "worker/checkpoint/safetensors.h"
#include "worker/eval/evaluate.h"
#include "worker/train/train.h"
#include "worker/model/cnn_backend.h"

namespace shrink::worker {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

shrink::v1::Policy Uniform(double prune, int bits) {
  shrink::v1::Policy policy;
  policy.mutable_uniform()->set_prune(prune);
  policy.mutable_uniform()->set_bits(bits);
  return policy;
}

shrink::v1::Policy PerLayer(const std::vector<std::tuple<std::string, double, int>>& actions) {
  shrink::v1::Policy policy;
  for (const auto& [name, prune, bits] : actions) {
    auto* action = policy.add_layers();
    action->set_name(name);
    action->set_prune(prune);
    action->set_bits(bits);
  }
  return policy;
}

TEST(CompressTest, KeptUnitsAreTheLargestByL1) {
  torch::Tensor weight = torch::tensor({{1.0f, -1.0f}, {0.1f, 0.0f}, {-3.0f, 0.0f}, {0.5f, 0.5f}});
  // L1 norms 2, 0.1, 3, 1: removing round(0.5 * 4) = 2 keeps units 0 and 2, in order.
  EXPECT_TRUE(torch::equal(KeptUnitsByL1(weight, 0.5), torch::tensor({0, 2}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(KeptUnitsByL1(weight, 0.0), torch::tensor({0, 1, 2, 3}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(KeptUnitsByL1(weight, 0.3), torch::tensor({0, 2, 3}, torch::kInt64)));  // round(1.2) = 1
  // At least one unit survives.
  EXPECT_TRUE(torch::equal(KeptUnitsByL1(weight.narrow(0, 0, 2), 0.9), torch::tensor({0}, torch::kInt64)));
}

TEST(CompressTest, PruningComputesWhatMaskingComputes) {
  TempDir dir;
  auto original = testing::RandomCnn(dir.path(), /*seed=*/11);
  ASSERT_NE(original, nullptr);
  const auto policy = PerLayer({{"conv1", 0.25, 32}, {"conv2", 0.5, 32}, {"fc1", 0.6, 32}, {"fc2", 0, 32}});
  auto pruned = original->Apply(policy);
  ASSERT_TRUE(pruned.ok()) << pruned.status();

  auto d = (*pruned)->Describe();
  EXPECT_EQ(d.layers(0).out_features(), 24);
  EXPECT_EQ(d.layers(1).in_features(), 24);
  EXPECT_EQ(d.layers(1).out_features(), 32);
  EXPECT_EQ(d.layers(2).in_features(), 32 * 49);
  EXPECT_EQ(d.layers(2).out_features(), 51);  // 128 - round(76.8)
  EXPECT_EQ(d.layers(3).in_features(), 51);
  EXPECT_LT(d.params(), original->Describe().params() / 2);
  EXPECT_LT(d.flops(), original->Describe().flops() / 2);

  // The original with the removed units' weights and biases zeroed: their outgoing
  // activations are ReLU(0) = 0 (max-pooled stays 0), so nothing downstream sees them.
  auto actions = ResolvePolicy(policy, original->Describe());
  ASSERT_TRUE(actions.ok());
  KeptUnits kept = ChooseKeptUnits(original->impl->cnn()->checkpoint, *actions);
  CnnCheckpoint masked = original->impl->cnn()->checkpoint;
  for (const auto& [layer, units] : kept) {
    torch::Tensor keep = torch::zeros({masked.tensors.at(layer + ".bias").size(0)}, torch::kBool);
    keep.index_fill_(0, units, true);
    for (const char* suffix : {".weight", ".bias"}) {
      torch::Tensor& t = masked.tensors.at(layer + suffix);
      std::vector<int64_t> shape(t.dim(), 1);
      shape[0] = -1;
      t = t * keep.to(torch::kFloat32).reshape(shape);
    }
  }
  auto masked_backend = MakeCnnBackend(masked);
  ASSERT_TRUE(masked_backend.ok()) << masked_backend.status();
  auto masked_model = std::make_optional(WrapBackend(std::move(*masked_backend)));

  torch::Tensor images = testing::FashionMnist().impl->test.images.narrow(0, 0, 64);
  torch::Tensor want = testing::Logits(**masked_model, images);
  torch::Tensor got = testing::Logits(**pruned, images);
  EXPECT_TRUE(torch::allclose(got, want, /*rtol=*/1e-5, /*atol=*/1e-5))
      << "max diff " << (got - want).abs().max().item<double>();
  // And the masking matters: the unmasked original computes something else.
  EXPECT_FALSE(torch::allclose(testing::Logits(*original, images), want, 1e-3, 1e-3));
}

TEST(CompressTest, Int8ModelReloadsWithIdenticalOutputsAndShrinks) {
  TempDir dir;
  auto original = testing::RandomCnn(dir.Sub("fp32"));
  ASSERT_NE(original, nullptr);
  auto int8 = original->Apply(Uniform(0.0, 8));
  ASSERT_TRUE(int8.ok()) << int8.status();
  ASSERT_TRUE((*int8)->Save(dir.Sub("int8")).ok());
  auto reloaded = Model::Load(dir.Sub("int8"));
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();

  torch::Tensor images = testing::RandomImages(32);
  torch::Tensor before = testing::Logits(**int8, images);
  EXPECT_TRUE(torch::equal(before, testing::Logits(**reloaded, images)));
  // Close to fp32: int8 weights and dynamically quantized activations.
  torch::Tensor reference = testing::Logits(*original, images);
  EXPECT_LT(((before - reference).norm() / reference.norm()).item<double>(), 0.05);
  // The linears really run the int8 kernel; the convs are stored in int8 and widened.
  EXPECT_TRUE((*reloaded)->impl->cnn()->net->fc1_int8 != nullptr);
  EXPECT_TRUE((*reloaded)->impl->cnn()->net->fc2_int8 != nullptr);
  EXPECT_TRUE((*reloaded)->impl->cnn()->net->fc1.is_empty());

  auto fp32_bytes = DirectoryBytes(dir.Sub("fp32"));
  auto int8_bytes = DirectoryBytes(dir.Sub("int8"));
  ASSERT_TRUE(fp32_bytes.ok() && int8_bytes.ok());
  EXPECT_LT(*int8_bytes, 0.30 * *fp32_bytes) << *int8_bytes << " vs " << *fp32_bytes;
  EXPECT_EQ((*int8)->Describe().bytes(), *int8_bytes);

  auto file = SafetensorsFile::Open(dir.Sub("int8/model.safetensors"));
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)->Find("fc1.weight")->dtype, SafetensorsDtype::kI8);
  EXPECT_EQ((*file)->Find("conv2.weight")->dtype, SafetensorsDtype::kI8);
  EXPECT_EQ((*file)->Find("conv2.weight_scale")->dtype, SafetensorsDtype::kF32);
  EXPECT_EQ((*file)->Find("conv2.weight_scale")->shape, std::vector<int64_t>{64});
  EXPECT_EQ((*file)->Find("fc1.bias")->dtype, SafetensorsDtype::kF32);
  auto config = nlohmann::json::parse(*ReadFile(dir.Sub("int8/config.json")));
  EXPECT_EQ(config["quantization"]["fc1"]["bits"], 8);
  EXPECT_EQ(config["quantization"]["conv1"]["scheme"], "int8_weight_per_channel");
  EXPECT_THAT(config["quantization"]["fc1"]["scheme"].get<std::string>(), HasSubstr("int8_dynamic"));
  EXPECT_EQ(config["compressed"], true);
  EXPECT_TRUE(config.contains("shrink_policy"));
}

TEST(CompressTest, MixedPolicyPrunesQuantizesAndReloads) {
  TempDir dir;
  auto original = testing::RandomCnn(dir.Sub("fp32"));
  ASSERT_NE(original, nullptr);
  auto compressed = original->Apply(PerLayer({{"conv1", 0.5, 16}, {"conv2", 0.25, 8}, {"fc1", 0.5, 8}, {"fc2", 0, 12}}));
  ASSERT_TRUE(compressed.ok()) << compressed.status();
  ASSERT_TRUE((*compressed)->Save(dir.Sub("mixed")).ok());
  auto reloaded = Model::Load(dir.Sub("mixed"));
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  torch::Tensor images = testing::RandomImages(16);
  EXPECT_TRUE(torch::equal(testing::Logits(**compressed, images), testing::Logits(**reloaded, images)));
  auto file = SafetensorsFile::Open(dir.Sub("mixed/model.safetensors"));
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)->Find("conv1.weight")->dtype, SafetensorsDtype::kF16);
  EXPECT_EQ((*file)->Find("conv1.weight")->shape, (std::vector<int64_t>{16, 1, 3, 3}));
  EXPECT_EQ((*file)->Find("fc2.weight")->dtype, SafetensorsDtype::kF16);
  EXPECT_EQ((*file)->Find("fc2.weight")->shape, (std::vector<int64_t>{10, 64}));
  EXPECT_EQ((*file)->Find("fc1.weight")->shape, (std::vector<int64_t>{64, 48 * 49}));
  auto config = nlohmann::json::parse(*ReadFile(dir.Sub("mixed/config.json")));
  EXPECT_EQ(config["quantization"]["fc2"]["bits"], 12);
  EXPECT_EQ(config["quantization"]["fc2"]["scheme"], "fp16");
  EXPECT_EQ(config["layers"]["conv2"]["out"], 48);

  // fp16 storage halves the bytes of an unpruned model.
  auto fp16 = original->Apply(Uniform(0.0, 16));
  ASSERT_TRUE(fp16.ok());
  EXPECT_LT((*fp16)->Describe().bytes(), 0.52 * original->Describe().bytes());
}

TEST(CompressTest, RejectsBadPoliciesAndRecompression) {
  TempDir dir;
  auto original = testing::RandomCnn(dir.path());
  ASSERT_NE(original, nullptr);
  EXPECT_EQ(original->Apply(Uniform(0.95, 8)).status().code(), absl::StatusCode::kInvalidArgument);
  auto prune_output = original->Apply(PerLayer({{"conv1", 0, 8}, {"conv2", 0, 8}, {"fc1", 0, 8}, {"fc2", 0.5, 8}}));
  EXPECT_EQ(prune_output.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(prune_output.status().message()), HasSubstr("fc2"));
  auto missing_layer = original->Apply(PerLayer({{"conv1", 0, 8}}));
  EXPECT_EQ(missing_layer.status().code(), absl::StatusCode::kInvalidArgument);

  auto compressed = original->Apply(Uniform(0.5, 32));
  ASSERT_TRUE(compressed.ok());
  EXPECT_EQ((*compressed)->Apply(Uniform(0.1, 8)).status().code(), absl::StatusCode::kFailedPrecondition);
  // Also after a round trip through disk.
  ASSERT_TRUE((*compressed)->Save(dir.Sub("c")).ok());
  auto reloaded = Model::Load(dir.Sub("c"));
  ASSERT_TRUE(reloaded.ok());
  EXPECT_EQ((*reloaded)->Apply(Uniform(0.1, 8)).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(CompressTest, TimeInterleavedComparesTwoModelsPassForPass) {
  TempDir dir;
  auto original = testing::RandomCnn(dir.path());
  ASSERT_NE(original, nullptr);
  auto pruned = original->Apply(Uniform(0.9, 32));
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EvalOptions eval;
  eval.threads = 1;
  eval.latency_batch = 16;
  eval.warmup_runs = 1;
  eval.timed_runs = 5;
  auto pair = TimeInterleaved(*original, **pruned, eval);
  ASSERT_TRUE(pair.ok()) << pair.status();
  EXPECT_EQ(pair->threads, 1);
  EXPECT_GT(pair->second_ms, 0);
  // 90% of the channels gone: ~1% of the convolutions' multiply-adds.
  EXPECT_LT(pair->second_ms, pair->first_ms);

  // Untimed evaluation: everything but the latency.
  eval.time_latency = false;
  auto untimed = Evaluate(**pruned, TaskData(), "", eval);
  ASSERT_TRUE(untimed.ok()) << untimed.status();
  EXPECT_EQ(untimed->latency_ms(), 0);
  EXPECT_GT(untimed->bytes(), 0);
  EXPECT_EQ(untimed->latency_batch(), 16);

  eval.timed_runs = 0;
  EXPECT_EQ(TimeInterleaved(*original, **pruned, eval).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CompressTest, Int8ForwardIsSafeFromSeveralThreads) {
  TempDir dir;
  auto original = testing::RandomCnn(dir.path());
  ASSERT_NE(original, nullptr);
  auto int8 = original->Apply(Uniform(0.25, 8));
  ASSERT_TRUE(int8.ok());
  torch::Tensor images = testing::RandomImages(16);
  torch::Tensor want = testing::Logits(**int8, images);
  std::vector<int> same(4, 0);  // not vector<bool>: threads write neighbouring elements
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      bool all = true;
      for (int i = 0; i < 20; ++i) all = all && torch::equal(testing::Logits(**int8, images), want);
      same[t] = all;
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < 4; ++t) EXPECT_TRUE(same[t]) << "thread " << t;
}

TEST(CompressTest, CompressedTinyModelKeepsAccuracy) {
  TempDir dir;
  TrainOptions options;
  options.epochs = 1;
  options.max_train_examples = 2000;
  auto report = TrainCnn(testing::FashionMnist(), options, dir.path(), nullptr);
  ASSERT_TRUE(report.ok()) << report.status();
  auto model = Model::Load(dir.path());
  ASSERT_TRUE(model.ok());
  auto int8 = (*model)->Apply(Uniform(0.0, 8));
  ASSERT_TRUE(int8.ok());
  EvalOptions eval;
  eval.max_examples = 2000;
  eval.timed_runs = 3;
  auto base = Evaluate(**model, testing::FashionMnist(), "validation", eval);
  auto small = Evaluate(**int8, testing::FashionMnist(), "validation", eval);
  ASSERT_TRUE(base.ok() && small.ok());
  EXPECT_GT(small->accuracy(), base->accuracy() - 0.02);
  EXPECT_LT(small->bytes(), 0.3 * base->bytes());
}

}  // namespace
}  // namespace shrink::worker
