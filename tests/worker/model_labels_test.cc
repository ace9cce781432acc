// A user's task with string labels is scored through the checkpoint's own class names
// (config.json id2label), and the names survive compression.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/files.h"
#include "common/policy.h"
#include "tests/worker/transformer_test_util.h"
#include "worker/data/text_data.h"
#include "worker/eval/evaluate.h"
#include "worker/nn/transformer_build.h"

namespace shrink::worker {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::TempDir;

// A tiny BERT whose head answers class 2 for every text, its classes named `names`,
// with a WordPiece vocabulary of "[PAD] [UNK] [CLS] [SEP] [MASK] w0 .. w54".
std::unique_ptr<Model> AlwaysClassTwo(const std::string& dir, const std::vector<std::string>& names) {
  TransformerConfig config = testing::TinyConfig(TransformerFamily::kBert);
  config.label_names = names;
  torch::manual_seed(3);
  Transformer net(config);
  {
    torch::NoGradGuard no_grad;
    net->classifier->bias.copy_(torch::tensor({0.0f, 0.0f, 10.0f}));  // weights ~N(0, 0.02): bias wins
  }
  EXPECT_TRUE(WriteTransformerCheckpoint(WeightsFromModule(net), dir).ok());
  std::string vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  for (int i = 0; i < 55; ++i) vocab += "w" + std::to_string(i) + "\n";
  EXPECT_TRUE(WriteFileAtomic(dir + "/vocab.txt", vocab).ok());
  auto model = Model::Load(dir);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::move(*model) : nullptr;
}

// A task whose test split is all `test_label`; training has every label in `others`.
TaskData Task(const std::string& test_label, const std::vector<std::string>& others) {
  std::string jsonl;
  int n = 0;
  for (const std::string& label : others) {
    jsonl += R"({"text": "w)" + std::to_string(n++) + R"( w9", "label": ")" + label + R"(", "split": "train"})" "\n";
  }
  for (int i = 0; i < 4; ++i) {
    jsonl += R"({"text": "w)" + std::to_string(n++) + R"( w7", "label": ")" + test_label + R"(", "split": "test"})" "\n";
  }
  auto parsed = ParseClassification(jsonl, true, "task.jsonl");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  TaskData data;
  data.name = "task.jsonl";
  data.text = std::make_shared<TextDataset>(*parsed);
  return data;
}

absl::StatusOr<double> TestAccuracy(const Model& model, const TaskData& data) {
  EvalOptions eval;
  eval.time_latency = false;
  auto metrics = Evaluate(model, data, "test", eval);
  if (!metrics.ok()) return metrics.status();
  return metrics->accuracy();
}

TEST(ModelLabelsTest, StringLabelsMapThroughTheCheckpointsOwnNames) {
  TempDir dir;
  // Not in name order: sorted, "neutral" would be class 1 and score 0.
  auto model = AlwaysClassTwo(dir.path(), {"positive", "negative", "neutral"});
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(*TestAccuracy(*model, Task("neutral", {"positive", "negative"})), 1.0);
  EXPECT_EQ(*TestAccuracy(*model, Task("positive", {"negative", "neutral"})), 0.0);
  // Case differs but only one name matches: the user meant it.
  EXPECT_EQ(*TestAccuracy(*model, Task("NEUTRAL", {"Positive", "negative"})), 1.0);

  auto unknown = TestAccuracy(*model, Task("neutral", {"angry", "positive"}));
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(), AllOf(HasSubstr("task.jsonl"), HasSubstr("\"angry\""),
                                                HasSubstr("positive, negative, neutral"), HasSubstr("id2label")));

  // Compressed, the names stay in config.json and the scoring stays right.
  auto policy = ParsePolicyJson(R"({"uniform": {"prune": 0.5, "bits": 8}})");
  ASSERT_TRUE(policy.ok()) << policy.status();
  auto small = model->Apply(*policy);
  ASSERT_TRUE(small.ok()) << small.status();
  ASSERT_TRUE((*small)->Save(dir.Sub("small")).ok());
  auto config = nlohmann::json::parse(*ReadFile(dir.Sub("small/config.json")));
  EXPECT_EQ(config["id2label"], nlohmann::json({{"0", "positive"}, {"1", "negative"}, {"2", "neutral"}}));
  EXPECT_EQ(config["label2id"], nlohmann::json({{"positive", 0}, {"negative", 1}, {"neutral", 2}}));
  EXPECT_EQ(*TestAccuracy(**small, Task("neutral", {"positive", "negative"})), 1.0);
}

TEST(ModelLabelsTest, ModelsWithoutNamesTakeTheTasksNamesInSortedOrder) {
  TempDir dir;
  // Hugging Face's defaults name nothing: "neutral" < "positive" < "zebra", so class 2 is "zebra".
  auto model = AlwaysClassTwo(dir.path(), {"LABEL_0", "LABEL_1", "LABEL_2"});
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(*TestAccuracy(*model, Task("zebra", {"neutral", "positive"})), 1.0);
  EXPECT_EQ(*TestAccuracy(*model, Task("neutral", {"positive", "zebra"})), 0.0);
  auto too_many = TestAccuracy(*model, Task("a", {"b", "c", "d"}));
  ASSERT_FALSE(too_many.ok());
  EXPECT_THAT(too_many.status().message(), HasSubstr("4 labels but the model's head has 3 classes"));
}

TEST(ModelLabelsTest, IntegerLabelsAreClassIds) {
  TextDataset data;
  data.integer_labels = true;
  data.label_names = {"0", "1", "2"};
  auto ids = ClassIdsForModel(data, {"c", "b", "a"}, 3);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, (std::vector<int64_t>{0, 1, 2}));
  auto too_many = ClassIdsForModel(data, {"x", "y"}, 2);
  ASSERT_FALSE(too_many.ok());
  EXPECT_THAT(too_many.status().message(), HasSubstr("class ids up to 2"));
  data.integer_labels = false;
  data.label_names = {"Pos", "pos"};
  // Both exact: no ambiguity. A name matching two only by case is refused.
  EXPECT_EQ(*ClassIdsForModel(data, {"pos", "Pos"}, 2), (std::vector<int64_t>{1, 0}));
  data.label_names = {"POS"};
  EXPECT_THAT(ClassIdsForModel(data, {"pos", "Pos"}, 2).status().message(), HasSubstr("neither exactly"));
}

}  // namespace
}  // namespace shrink::worker
