// A recalled task stops inside the worker's long passes, not only between a task's stages:
// evaluation batches, timed runs, profiling and GPTQ return CANCELLED once the flag is set,
// and run as before while it is not.
#include <gtest/gtest.h>

#include "tests/worker/model_test_util.h"
#include "tests/worker/transformer_test_util.h"
#include "worker/data/task_data.h"
#include "worker/compress/transformer_compress.h"
#include "worker/eval/evaluate.h"
#include "worker/train/train.h"

namespace shrink::worker {
namespace {

using testing::TempDir;

EvalOptions QuickEval(const RecallFlag* recalled) {
  EvalOptions eval;
  eval.threads = 1;
  eval.warmup_runs = 1;
  eval.timed_runs = 2;
  eval.sequence_length = 16;
  eval.max_examples = 200;
  eval.recalled = recalled;
  return eval;
}

TEST(RecallTest, CnnEvaluationTimingAndProfilingStop) {
  TempDir dir;
  auto model = testing::RandomCnn(dir.path());
  ASSERT_NE(model, nullptr);
  auto images = ImageDataset::LoadFashionMnist(DebianFashionMnistFiles());
  ASSERT_TRUE(images.ok()) << images.status();
  const TaskData data{"fashion-mnist", *images, nullptr};
  RecallFlag recalled(false);
  const EvalOptions eval = QuickEval(&recalled);
  ProfileOptions profile;
  profile.calibration_examples = 100;

  ASSERT_TRUE(Evaluate(*model, data, "validation", eval).ok());
  ASSERT_TRUE(TimeInterleaved(*model, *model, eval).ok());
  ASSERT_TRUE(Profile(*model, data, eval, profile).ok());

  recalled.store(true);
  EXPECT_EQ(Evaluate(*model, data, "validation", eval).status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(Evaluate(*model, TaskData(), "", eval).status().code(), absl::StatusCode::kCancelled)  // timing only
      << "the timed runs check the flag too";
  EXPECT_EQ(TimeInterleaved(*model, *model, eval).status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(Profile(*model, data, eval, profile).status().code(), absl::StatusCode::kCancelled);
}

TEST(RecallTest, TransformerEvaluationOnTextStops) {
  auto files = LocalTaskFiles("fortunes-topic");
  ASSERT_TRUE(files.ok()) << files.status();
  auto data = LoadTaskData("fortunes-topic", *files);
  ASSERT_TRUE(data.ok()) << data.status();
  TempDir dir;
  TrainOptions train;  // just enough of a model to read text: a vocabulary, tiny shapes
  train.preset = "tiny";
  train.vocab_size = 300;
  train.max_length = 32;
  train.epochs = 1;
  train.max_train_examples = 32;
  train.threads = 1;
  ASSERT_TRUE(TrainTransformer("bert", *data->text, train, dir.path(), nullptr).ok());
  auto model = Model::Load(dir.path());
  ASSERT_TRUE(model.ok()) << model.status();

  RecallFlag recalled(false);
  const EvalOptions eval = QuickEval(&recalled);
  auto metrics = Evaluate(**model, *data, "validation", eval);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->examples(), 200);
  recalled.store(true);
  EXPECT_EQ(Evaluate(**model, *data, "validation", eval).status().code(), absl::StatusCode::kCancelled);
}

TEST(RecallTest, GptqStopsBetweenLayers) {
  TempDir dir;
  auto model = testing::TinyTransformer(TransformerFamily::kGpt2, dir.path());
  ASSERT_NE(model, nullptr);
  const TransformerWeights& fp32 = model->impl->transformer()->weights;
  std::map<std::string, int> bits;
  std::vector<std::string> modules;
  for (const auto& group : TransformerLayerGroups(fp32.config)) {
    if (group.kind != "attention" && group.kind != "ffn") continue;
    bits[group.name] = 4;
    modules.insert(modules.end(), group.modules.begin(), group.modules.end());
  }
  DenseInputs inputs;
  for (const std::string& module : modules) {
    inputs[module] = torch::randn({64, fp32.tensors.at(module + ".weight").size(1)});
  }
  RecallFlag recalled(false);
  ASSERT_TRUE(QuantizeTransformer(fp32, bits, inputs, &recalled).ok());
  recalled.store(true);
  EXPECT_EQ(QuantizeTransformer(fp32, bits, inputs, &recalled).status().code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace shrink::worker
