// Fine-tuning from a model folder (`shrink train --init`): the pretrained shape, weights and
// tokenizer are kept, a classifier gets a new head for the task's labels, and models that
// cannot be fine-tuned are refused by name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/files.h"
#include "common/policy.h"
#include "worker/checkpoint/transformer_checkpoint.h"
#include "worker/data/text_data.h"
#include "worker/model/model.h"
#include "worker/train/train.h"

namespace shrink::worker {
namespace {

using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() : path_(*MakeTempDir("shrink-fine-tune-")) {}
  ~TempDir() { RemoveAll(path_); }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A classification task whose classes are told apart by their own words.
TextDataset KeywordTask(const std::vector<std::string>& labels) {
  TextDataset data;
  data.task = "classification";
  data.label_names = labels;
  for (int64_t label = 0; label < static_cast<int64_t>(labels.size()); ++label) {
    for (int i = 0; i < 40; ++i) {
      TextExample e{labels[label] + " word " + labels[label] + " number " + std::to_string(i), label};
      (i % 10 == 8 ? data.validation : i % 10 == 9 ? data.test : data.train).push_back(e);
    }
  }
  return data;
}

TextDataset LanguageTask() {
  TextDataset data;
  data.task = "lm";
  for (int i = 0; i < 60; ++i) {
    TextExample e{"the cat sat on the mat number " + std::to_string(i), -1};
    (i % 10 == 8 ? data.validation : i % 10 == 9 ? data.test : data.train).push_back(e);
  }
  return data;
}

TrainOptions Tiny() {
  TrainOptions options;
  options.preset = "tiny";
  options.vocab_size = 300;
  options.max_length = 16;
  options.epochs = 1;
  options.batch_size = 16;
  options.threads = 1;
  options.learning_rate = 1e-3;
  return options;
}

TEST(FineTuneTest, AClassifierKeepsTheEncoderAndTokenizerAndGetsANewHead) {
  TempDir dir;
  ASSERT_TRUE(TrainTransformer("bert", KeywordTask({"apple", "pear"}), Tiny(), dir.Sub("pretrained"), nullptr).ok());
  TrainOptions fine = Tiny();
  fine.init_dir = dir.Sub("pretrained");
  fine.learning_rate = 1e-12;  // steps too small to move a weight: what is kept is what was copied
  fine.vocab_size = 5000;      // ignored: the vocabulary comes with the model
  auto report = TrainTransformer("bert", KeywordTask({"red", "green", "blue"}), fine, dir.Sub("tuned"), nullptr);
  ASSERT_TRUE(report.ok()) << report.status();

  auto before = ReadTransformerCheckpoint(dir.Sub("pretrained"));
  auto after = ReadTransformerCheckpoint(dir.Sub("tuned"));
  ASSERT_TRUE(before.ok() && after.ok());
  EXPECT_EQ(after->config.num_labels, 3);
  EXPECT_EQ(after->config.label_names, (std::vector<std::string>{"red", "green", "blue"}));
  EXPECT_EQ(after->tensors.at("classifier.weight").size(0), 3);
  int compared = 0;
  for (const auto& [name, tensor] : before->tensors) {
    if (name.rfind("classifier.", 0) == 0) continue;
    ASSERT_TRUE(after->tensors.count(name)) << name;
    EXPECT_TRUE(torch::allclose(tensor, after->tensors.at(name), 0, 1e-6)) << name;
    ++compared;
  }
  EXPECT_GT(compared, 10);
  EXPECT_EQ(*ReadFile(dir.Sub("pretrained/vocab.txt")), *ReadFile(dir.Sub("tuned/vocab.txt")));
}

TEST(FineTuneTest, AClassifierLearnsItsNewTask) {
  TempDir dir;
  ASSERT_TRUE(TrainTransformer("bert", KeywordTask({"apple", "pear"}), Tiny(), dir.Sub("pretrained"), nullptr).ok());
  TrainOptions fine = Tiny();
  fine.init_dir = dir.Sub("pretrained");
  fine.epochs = 8;
  auto report = TrainTransformer("bert", KeywordTask({"apple", "pear", "plum"}), fine, dir.Sub("tuned"), nullptr);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GE(report->test_accuracy, 0.9);  // three classes by keyword: chance is 1/3
}

TEST(FineTuneTest, ALanguageModelContinuesWithItsOwnMerges) {
  TempDir dir;
  ASSERT_TRUE(TrainTransformer("gpt2", LanguageTask(), Tiny(), dir.Sub("pretrained"), nullptr).ok());
  TrainOptions fine = Tiny();
  fine.init_dir = dir.Sub("pretrained");
  fine.learning_rate = 1e-12;
  ASSERT_TRUE(TrainTransformer("gpt2", LanguageTask(), fine, dir.Sub("tuned"), nullptr).ok());
  auto before = ReadTransformerCheckpoint(dir.Sub("pretrained"));
  auto after = ReadTransformerCheckpoint(dir.Sub("tuned"));
  ASSERT_TRUE(before.ok() && after.ok());
  for (const auto& [name, tensor] : before->tensors) {
    EXPECT_TRUE(torch::allclose(tensor, after->tensors.at(name), 0, 1e-6)) << name;
  }
  EXPECT_EQ(*ReadFile(dir.Sub("pretrained/merges.txt")), *ReadFile(dir.Sub("tuned/merges.txt")));
}

TEST(FineTuneTest, ModelsThatCannotBeFineTunedAreRefusedByName) {
  TempDir dir;
  ASSERT_TRUE(TrainTransformer("gpt2", LanguageTask(), Tiny(), dir.Sub("gpt2"), nullptr).ok());
  TrainOptions fine = Tiny();
  fine.init_dir = dir.Sub("gpt2");
  auto wrong_kind = TrainTransformer("bert", KeywordTask({"a", "b"}), fine, dir.Sub("out"), nullptr);
  ASSERT_FALSE(wrong_kind.ok());
  EXPECT_THAT(wrong_kind.status().message(), HasSubstr(dir.Sub("gpt2") + ": a gpt2 model cannot be trained as a classifier"));

  ASSERT_TRUE(TrainTransformer("bert", KeywordTask({"a", "b"}), Tiny(), dir.Sub("bert"), nullptr).ok());
  auto model = Model::Load(dir.Sub("bert"));
  ASSERT_TRUE(model.ok());
  auto policy = ParsePolicyJson(R"({"uniform": {"prune": 0, "bits": 8}})");
  ASSERT_TRUE(policy.ok());
  auto int8 = (*model)->Apply(*policy);
  ASSERT_TRUE(int8.ok()) << int8.status();
  ASSERT_TRUE((*int8)->Save(dir.Sub("int8")).ok());
  fine.init_dir = dir.Sub("int8");
  auto compressed = TrainTransformer("bert", KeywordTask({"a", "b"}), fine, dir.Sub("out"), nullptr);
  ASSERT_FALSE(compressed.ok());
  EXPECT_THAT(compressed.status().message(), HasSubstr("--init needs an uncompressed model"));

  fine.init_dir = dir.Sub("missing");
  auto missing = TrainTransformer("bert", KeywordTask({"a", "b"}), fine, dir.Sub("out"), nullptr);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr(dir.Sub("missing")));
  EXPECT_FALSE(PathExists(dir.Sub("out/model.safetensors")));  // nothing half-written
}

}  // namespace
}  // namespace shrink::worker
