// Broken numbers are refused, never scored: NaN or infinite weights at load (naming the
// file and tensor), a distillation that diverges, and outputs that overflow.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

#include "common/files.h"
#include "common/policy.h"
#include "tests/worker/transformer_test_util.h"
#include "worker/checkpoint/safetensors.h"
#include "worker/data/text_data.h"
#include "worker/eval/evaluate.h"

namespace shrink::worker {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::TempDir;

// Rewrites `dir`'s model.safetensors with `name` set to `value` everywhere (kept in its dtype).
void Overwrite(const std::string& dir, const std::string& name, float value) {
  const std::string path = dir + "/model.safetensors";
  std::map<std::string, SafetensorsTensor> tensors;
  {
    auto file = SafetensorsFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status();
    for (const auto& [key, view] : (*file)->tensors()) {
      tensors[key] = SafetensorsTensor{view.dtype, view.shape, std::string(reinterpret_cast<const char*>(view.data), view.size)};
    }
  }
  ASSERT_EQ(tensors.count(name), 1u) << name;
  SafetensorsTensor& t = tensors[name];
  if (t.dtype == SafetensorsDtype::kF16) {
    const c10::Half half(value);
    for (size_t i = 0; i < t.bytes.size(); i += 2) std::memcpy(&t.bytes[i], &half, 2);
  } else {
    ASSERT_EQ(t.dtype, SafetensorsDtype::kF32);
    for (size_t i = 0; i < t.bytes.size(); i += 4) std::memcpy(&t.bytes[i], &value, 4);
  }
  ASSERT_TRUE(WriteSafetensors(path, tensors).ok());
}

TEST(NonFiniteTest, WeightsThatAreNotFiniteAreRefusedAtLoadNamingTheTensor) {
  TempDir dir;
  ASSERT_NE(testing::TinyTransformer(TransformerFamily::kBert, dir.path()), nullptr);
  Overwrite(dir.path(), "classifier.weight", std::numeric_limits<float>::quiet_NaN());
  auto bert = Model::Load(dir.path());
  ASSERT_FALSE(bert.ok());
  EXPECT_EQ(bert.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bert.status().message(), AllOf(HasSubstr(dir.Sub("model.safetensors")), HasSubstr("classifier.weight"),
                                             HasSubstr("96 of 96 values are NaN or infinite (96 NaN)")));

  // An fp16-stored model (as downloads often are), and the CNN.
  TempDir half;
  auto model = testing::TinyTransformer(TransformerFamily::kGpt2, half.path());
  ASSERT_NE(model, nullptr);
  auto policy = ParsePolicyJson(R"({"uniform": {"prune": 0, "bits": 16}})");
  auto fp16 = model->Apply(*policy);
  ASSERT_TRUE(fp16.ok()) << fp16.status();
  ASSERT_TRUE((*fp16)->Save(half.Sub("fp16")).ok());
  Overwrite(half.Sub("fp16"), "transformer.h.1.mlp.c_fc.weight", std::numeric_limits<float>::infinity());
  EXPECT_THAT(Model::Load(half.Sub("fp16")).status().message(),
              AllOf(HasSubstr("transformer.h.1.mlp.c_fc.weight"), HasSubstr("values are NaN or infinite (0 NaN)")));

  TempDir cnn;
  ASSERT_NE(testing::RandomCnn(cnn.path()), nullptr);
  Overwrite(cnn.path(), "fc2.bias", -std::numeric_limits<float>::infinity());
  EXPECT_THAT(Model::Load(cnn.path()).status().message(), AllOf(HasSubstr("fc2.bias"), HasSubstr("10 of 10")));
}

TEST(NonFiniteTest, ADivergingDistillationFailsTheCandidate) {
  TempDir dir;
  auto model = testing::RandomCnn(dir.path());
  ASSERT_NE(model, nullptr);
  auto images = ImageDataset::LoadFashionMnist(DebianFashionMnistFiles());
  ASSERT_TRUE(images.ok()) << images.status();
  auto policy = ParsePolicyJson(R"({"uniform": {"prune": 0.5, "bits": 8, "distill": 1.0}})");
  ASSERT_TRUE(policy.ok()) << policy.status();
  ApplyOptions options;
  options.data = TaskData{"fashion-mnist", *images, nullptr};
  options.distill.max_steps = 6;
  options.distill.learning_rate = 1e30;  // weights ~1e30 after one step, overflowing after two
  auto diverged = model->Apply(*policy, options);
  ASSERT_FALSE(diverged.ok());
  EXPECT_EQ(diverged.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(diverged.status().message(), AllOf(HasSubstr("distillation diverged"), HasSubstr("NaN or infinite")));
}

TEST(NonFiniteTest, OutputsThatOverflowAreAnErrorNotAScore) {
  TempDir dir;
  ASSERT_NE(testing::TinyTransformer(TransformerFamily::kBert, dir.path()), nullptr);
  Overwrite(dir.path(), "classifier.weight", 3e38f);  // finite, but logits overflow
  std::string vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  for (int i = 0; i < 55; ++i) vocab += "w" + std::to_string(i) + "\n";
  ASSERT_TRUE(WriteFileAtomic(dir.Sub("vocab.txt"), vocab).ok());
  auto model = Model::Load(dir.path());
  ASSERT_TRUE(model.ok()) << model.status();
  auto parsed = ParseClassification("w1 w2\ta\nw3 w4\tb\nw5\ta\nw6\tb\nw7\ta\nw8\tb\nw9\ta\nw10\tb\n", false, "t.tsv");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  TaskData data;
  data.name = "t.tsv";
  data.text = std::make_shared<TextDataset>(*parsed);
  EvalOptions eval;
  eval.time_latency = false;
  auto metrics = Evaluate(**model, data, "train", eval);
  ASSERT_FALSE(metrics.ok());
  EXPECT_THAT(metrics.status().message(), HasSubstr("outputs on the train split are NaN or infinite"));
}

}  // namespace
}  // namespace shrink::worker
