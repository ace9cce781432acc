// The reference CNN: description, checkpoint IO and its errors, training, evaluation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/files.h"
#include "tests/worker/model_test_util.h"
#include "worker/checkpoint/safetensors.h"
#include "worker/checkpoint/safetensors_torch.h"
#include "worker/eval/evaluate.h"
#include "worker/train/train.h"
#include "worker/nn/device.h"
#include "worker/nn/cnn_build.h"

namespace shrink::worker {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::TempDir;

TEST(CnnTest, DescribesTheReferenceCnn) {
  TempDir dir;
  auto model = testing::RandomCnn(dir.path());
  ASSERT_NE(model, nullptr);
  const shrink::v1::ModelDescription d = model->Describe();
  EXPECT_EQ(d.model_type(), "shrink-cnn");
  ASSERT_EQ(d.layers_size(), 4);
  struct Want {
    const char* name;
    const char* kind;
    int64_t in, out, kernel, params, flops;
    bool prunable;
    int64_t group;
  };
  const Want want[] = {{"conv1", "conv2d", 1, 32, 9, 320, 32 * 9 * 28 * 28, true, 1},
                       {"conv2", "conv2d", 32, 64, 9, 18496, 64 * 32 * 9 * 14 * 14, true, 1},
                       {"fc1", "linear", 3136, 128, 1, 401536, 3136 * 128, true, 49},
                       {"fc2", "linear", 128, 10, 1, 1290, 1280, false, 1}};
  int64_t params = 0, flops = 0;
  for (int i = 0; i < 4; ++i) {
    const auto& layer = d.layers(i);
    EXPECT_EQ(layer.name(), want[i].name);
    EXPECT_EQ(layer.kind(), want[i].kind);
    EXPECT_EQ(layer.in_features(), want[i].in) << want[i].name;
    EXPECT_EQ(layer.out_features(), want[i].out) << want[i].name;
    EXPECT_EQ(layer.kernel_elements(), want[i].kernel) << want[i].name;
    EXPECT_EQ(layer.params(), want[i].params) << want[i].name;
    EXPECT_EQ(layer.flops(), want[i].flops) << want[i].name;
    EXPECT_EQ(layer.prunable(), want[i].prunable) << want[i].name;
    EXPECT_EQ(layer.input_group(), want[i].group) << want[i].name;
    params += want[i].params;
    flops += want[i].flops;
  }
  EXPECT_EQ(d.params(), params);
  EXPECT_EQ(d.params(), 421642);
  EXPECT_EQ(d.flops(), flops);
  auto bytes = DirectoryBytes(dir.path());
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(d.bytes(), *bytes);  // the description's bytes are the bytes Save writes
}

TEST(CnnTest, SaveAndLoadGiveIdenticalOutputs) {
  TempDir dir;
  auto model = testing::RandomCnn(dir.Sub("a"));
  ASSERT_NE(model, nullptr);
  ASSERT_TRUE(model->Save(dir.Sub("b")).ok());
  auto reloaded = Model::Load(dir.Sub("b"));
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  torch::Tensor images = testing::RandomImages(8);
  EXPECT_TRUE(torch::equal(testing::Logits(*model, images), testing::Logits(**reloaded, images)));
  auto config = ReadFile(dir.Sub("b/config.json"));
  ASSERT_TRUE(config.ok());
  auto json = nlohmann::json::parse(*config);
  EXPECT_EQ(json["model_type"], "shrink-cnn");
  EXPECT_EQ(json["layers"]["conv2"]["out"], 64);
  EXPECT_EQ(json["layers"]["fc1"]["in"], 3136);
}

class CnnLoadErrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = testing::RandomCnn(dir_.path());
    original_config_ = nlohmann::json::parse(*ReadFile(dir_.Sub("config.json")));
  }

  std::string LoadError() {
    auto model = Model::Load(dir_.path());
    EXPECT_FALSE(model.ok());
    EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument) << model.status();
    return std::string(model.status().message());
  }
  // The config.json the valid model was saved with.
  nlohmann::json Config() { return original_config_; }
  void WriteConfig(const nlohmann::json& config) {
    ASSERT_TRUE(WriteFileAtomic(dir_.Sub("config.json"), config.dump()).ok());
  }
  // Rewrites model.safetensors with `edit` applied to its tensors.
  void EditTensors(const std::function<void(std::map<std::string, torch::Tensor>&)>& edit) {
    auto file = SafetensorsFile::Open(dir_.Sub("model.safetensors"));
    ASSERT_TRUE(file.ok());
    std::map<std::string, torch::Tensor> tensors;
    for (const auto& [name, view] : (*file)->tensors()) tensors[name] = *ToTorch(view);
    file->reset();
    edit(tensors);
    std::map<std::string, SafetensorsTensor> out;
    for (const auto& [name, t] : tensors) out[name] = *FromTorch(t);
    ASSERT_TRUE(WriteSafetensors(dir_.Sub("model.safetensors"), out).ok());
  }

  TempDir dir_;
  std::unique_ptr<Model> model_;
  nlohmann::json original_config_;
};

TEST_F(CnnLoadErrorTest, MissingFiles) {
  RemoveAll(dir_.Sub("model.safetensors"));
  EXPECT_THAT(LoadError(), HasSubstr("model.safetensors"));
  RemoveAll(dir_.Sub("config.json"));
  EXPECT_THAT(LoadError(), HasSubstr("config.json"));
  auto missing_dir = Model::Load(dir_.Sub("nope"));
  EXPECT_FALSE(missing_dir.ok());
}

TEST_F(CnnLoadErrorTest, BadConfig) {
  ASSERT_TRUE(WriteFileAtomic(dir_.Sub("config.json"), "{not json").ok());
  EXPECT_THAT(LoadError(), HasSubstr("config.json"));
  WriteConfig({{"model_type", "t5"}});
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("model_type"), HasSubstr("\"t5\"")));
  WriteConfig({{"hidden", 3}});
  EXPECT_THAT(LoadError(), HasSubstr("model_type"));
  auto config = Config();
  config["layers"]["conv2"]["out"] = 48;
  WriteConfig(config);
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("layers.conv2.out"), HasSubstr("64")));
  config = Config();
  config["quantization"]["fc1"] = {{"bits", 8}, {"scheme", "int8_dynamic_per_channel"}};
  WriteConfig(config);
  EXPECT_THAT(LoadError(), HasSubstr("fc1.weight"));  // F32 tensor where int8 was promised
  config = Config();
  config["quantization"]["fc3"] = {{"bits", 8}, {"scheme", "x"}};
  WriteConfig(config);
  EXPECT_THAT(LoadError(), HasSubstr("fc3"));
}

TEST_F(CnnLoadErrorTest, InconsistentTensors) {
  EditTensors([](auto& t) { t["fc1.weight"] = t["fc1.weight"].narrow(1, 0, 3000).contiguous(); });
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("fc1.weight"), HasSubstr("3000"), HasSubstr("3136")));
}

TEST_F(CnnLoadErrorTest, MissingAndExtraTensors) {
  EditTensors([](auto& t) { t.erase("conv2.bias"); });
  EXPECT_THAT(LoadError(), HasSubstr("conv2.bias"));
  model_ = testing::RandomCnn(dir_.path());
  EditTensors([](auto& t) { t["fc3.weight"] = torch::zeros({2}); });
  EXPECT_THAT(LoadError(), HasSubstr("fc3.weight"));
  model_ = testing::RandomCnn(dir_.path());
  EditTensors([](auto& t) { t["conv1.bias"] = t["conv1.bias"].to(torch::kFloat64); });
  EXPECT_THAT(LoadError(), HasSubstr("conv1.bias"));
  model_ = testing::RandomCnn(dir_.path());
  EditTensors([](auto& t) { t["conv1.weight"] = torch::zeros({32, 9}); });
  EXPECT_THAT(LoadError(), HasSubstr("conv1.weight"));
}

TEST_F(CnnLoadErrorTest, CorruptSafetensors) {
  auto bytes = ReadFile(dir_.Sub("model.safetensors"));
  ASSERT_TRUE(bytes.ok());
  ASSERT_TRUE(WriteFileAtomic(dir_.Sub("model.safetensors"), bytes->substr(0, bytes->size() / 2)).ok());
  EXPECT_THAT(LoadError(), HasSubstr("byte offset"));
}

TEST(CnnTest, PrunedWidthsLoadFromShapes) {
  TempDir dir;
  torch::manual_seed(1);
  Cnn net(CnnWidths{1, 5, 7, 11, 10});
  ASSERT_TRUE(WriteCnnCheckpoint(CheckpointFromModule(net), dir.path()).ok());
  auto model = Model::Load(dir.path());
  ASSERT_TRUE(model.ok()) << model.status();
  auto d = (*model)->Describe();
  EXPECT_EQ(d.layers(0).out_features(), 5);
  EXPECT_EQ(d.layers(1).out_features(), 7);
  EXPECT_EQ(d.layers(2).in_features(), 7 * 49);
  EXPECT_EQ(d.layers(3).in_features(), 11);
}

TEST(CnnTest, TinyTrainingIsDeterministicAndLearns) {
  TempDir dir;
  TrainOptions options;
  options.epochs = 1;
  options.max_train_examples = 2000;
  options.seed = 5;
  std::vector<std::string> lines;
  auto first = TrainCnn(testing::FashionMnist(), options, dir.Sub("a"),
                        [&](const std::string& line) { lines.push_back(line); });
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("epoch 1/1"));
  EXPECT_GT(first->test_accuracy, 0.6);
  EXPECT_GT(first->validation_accuracy, 0.6);
  EXPECT_EQ(first->params, 421642);
  EXPECT_GT(first->seconds, 0);
  auto second = TrainCnn(testing::FashionMnist(), options, dir.Sub("b"), nullptr);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->test_accuracy, second->test_accuracy);
  EXPECT_EQ(*ReadFile(dir.Sub("a/model.safetensors")), *ReadFile(dir.Sub("b/model.safetensors")));

  auto model = Model::Load(dir.Sub("a"));
  ASSERT_TRUE(model.ok()) << model.status();
  EvalOptions eval;
  eval.threads = 1;
  eval.latency_batch = 16;
  eval.warmup_runs = 1;
  eval.timed_runs = 3;
  auto metrics = Evaluate(**model, testing::FashionMnist(), "validation", eval);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_DOUBLE_EQ(metrics->accuracy(), first->validation_accuracy);
  EXPECT_EQ(metrics->examples(), 5000);
  EXPECT_EQ(metrics->split(), "validation");
  EXPECT_EQ(metrics->threads(), 1);
  EXPECT_EQ(metrics->latency_batch(), 16);
  EXPECT_GT(metrics->latency_ms(), 0);
  EXPECT_EQ(metrics->params(), 421642);
  EXPECT_EQ(metrics->flops(), (*model)->Describe().flops());
  EXPECT_EQ(metrics->bytes(), *DirectoryBytes(dir.Sub("a")));
}

TEST(CnnTest, EvaluateOptionsAndErrors) {
  TempDir dir;
  auto model = testing::RandomCnn(dir.path());
  ASSERT_NE(model, nullptr);
  EvalOptions eval;
  eval.max_examples = 300;
  eval.timed_runs = 2;
  auto metrics = Evaluate(*model, testing::FashionMnist(), "validation", eval);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->examples(), 300);
  EXPECT_EQ(metrics->split(), "validation");
  EXPECT_GE(metrics->threads(), 1);
  auto bad_split = Evaluate(*model, testing::FashionMnist(), "dev", eval);
  EXPECT_EQ(bad_split.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_split.status().message()), HasSubstr("dev"));
  eval.timed_runs = 0;
  EXPECT_EQ(Evaluate(*model, testing::FashionMnist(), "test", eval).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CnnTest, ConfigureTorchSetsThreads) {
  EXPECT_EQ(ConfigureTorch(1), 1);
  EXPECT_GE(ConfigureTorch(0), 1);
  EXPECT_EQ(at::globalContext().qEngine(), at::QEngine::ONEDNN);
}

}  // namespace
}  // namespace shrink::worker
