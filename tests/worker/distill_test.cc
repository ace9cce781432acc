// Knowledge distillation: the step and two-stage arithmetic, a pruned transformer
// (BERT and GPT-2) drawn back towards its teacher, staged pruning ending at the
// single-stage shapes and bytes, and a pruned CNN that recovers accuracy.
#include <gtest/gtest.h>

#include <cmath>

#include "common/policy.h"
#include "tests/worker/model_test_util.h"
#include "tests/worker/transformer_test_util.h"
#include "worker/compress/distill/distill.h"
#include "worker/compress/transformer_compress.h"
#include "worker/compress/distill/transformer_distill.h"
#include "worker/eval/evaluate.h"
#include "worker/train/train.h"
#include "worker/nn/transformer_build.h"

namespace shrink::worker {
namespace {

using testing::TempDir;
using testing::TinyTransformer;

shrink::v1::LayerAction Action(const std::string& name, double prune, int bits, double distill) {
  shrink::v1::LayerAction action;
  action.set_name(name);
  action.set_prune(prune);
  action.set_bits(bits);
  action.set_distill(distill);
  return action;
}

TEST(DistillTest, AnyDistillingLayerGetsEveryStep) {
  std::vector<shrink::v1::LayerAction> actions = {Action("a", 0, 8, 1.0), Action("b", 0, 8, 0.5),
                                                  Action("c", 0, 8, 0.0), Action("d", 0, 8, 0.5)};
  EXPECT_EQ(DistillSteps(actions, 100), 100);
  EXPECT_EQ(DistillSteps({Action("a", 0, 8, 0.01), Action("b", 0, 8, 0)}, 100), 100);
  EXPECT_EQ(DistillSteps(actions, 0), 0);
  EXPECT_EQ(DistillSteps({Action("a", 0, 8, 0)}, 100), 0);
  EXPECT_EQ(DistillSteps({}, 100), 0);
  EXPECT_EQ(FirstStageSteps(7) + (7 - FirstStageSteps(7)), 7);
}

TEST(DistillTest, TwoStagePruningKeepsExactlyTheSingleStageCount) {
  for (int64_t units = 1; units <= 80; ++units) {
    for (double ratio = 0.05; ratio <= 0.9 + 1e-9; ratio += 0.05) {
      torch::Tensor importance = torch::rand({units});
      const int64_t single = KeptByImportance(importance, ratio).numel();
      const int64_t first = KeptByImportance(importance, FirstStagePrune(ratio)).numel();
      const int64_t second = KeptByImportance(importance.narrow(0, 0, first), SecondStagePrune(units, first, ratio)).numel();
      ASSERT_EQ(second, single) << units << " units at ratio " << ratio;
    }
  }
}

TEST(DistillTest, SoftTargetLossIsZeroOnlyWhenTheDistributionsMatch) {
  torch::Tensor teacher = torch::randn({4, 6});
  EXPECT_NEAR(SoftTargetLoss(teacher, teacher, 2.0).item<double>(), 0.0, 1e-6);
  EXPECT_GT(SoftTargetLoss(torch::zeros({4, 6}), teacher, 2.0).item<double>(), 1e-3);
  // Rows with weight 0 do not count.
  torch::Tensor student = teacher.clone();
  student[3] = torch::zeros({6});
  EXPECT_NEAR(SoftTargetLoss(student, teacher, 2.0, torch::tensor({1.0f, 1.0f, 1.0f, 0.0f})).item<double>(), 0.0, 1e-6);
  EXPECT_NEAR(RelativeSquaredError(teacher * 1.1, teacher).item<double>(), 0.01, 1e-4);
}

// Batches whose labels come from the teacher itself, so the task agrees with it: random
// texts classified by the encoder, or greedy continuations of a random token by the decoder.
std::vector<TokenBatch> TeacherLabelledBatches(Transformer& teacher, int count, uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<TokenBatch> batches;
  torch::NoGradGuard no_grad;
  for (int i = 0; i < count; ++i) {
    torch::Tensor ids = torch::randint(2, 60, {8, 12}, torch::kInt64);
    if (teacher->config().is_decoder()) {
      ids = ids.narrow(1, 0, 1);
      while (ids.size(1) < 12) {
        torch::Tensor next = teacher->forward(ids, torch::ones_like(ids)).select(1, -1).argmax(-1, true);
        ids = torch::cat({ids, next}, 1);
      }
    }
    torch::Tensor mask = torch::ones_like(ids);
    mask.narrow(1, 9, 3).narrow(0, 0, 3).zero_();  // some padding
    ids.masked_fill_(mask.eq(0), 0);
    torch::Tensor labels;
    if (!teacher->config().is_decoder()) labels = teacher->forward(ids, mask).argmax(1);
    batches.push_back({ids, mask, labels});
  }
  return batches;
}

// How far the student's block outputs are from the teacher's on `batches`: the mean relative
// squared error of every block's output at real tokens (the student's blocks map one to one).
double FeatureError(Transformer& teacher, Transformer& student, const std::vector<TokenBatch>& batches) {
  torch::NoGradGuard no_grad;
  double sum = 0;
  int terms = 0;
  for (const auto& batch : batches) {
    TransformerTrace t, s;
    teacher->Encode(batch.ids, batch.mask, &t);
    student->Encode(batch.ids, batch.mask, &s);
    torch::Tensor mask = batch.mask.to(torch::kFloat32).unsqueeze(-1);
    for (size_t i = 0; i < s.hidden.size(); ++i, ++terms) {
      sum += RelativeSquaredError(s.hidden[i] * mask, t.hidden[i] * mask).item<double>();
    }
  }
  return sum / terms;
}

TEST(DistillTest, DistillationDrawsAPrunedTransformerBackTowardsItsTeacher) {
  for (TransformerFamily family : {TransformerFamily::kBert, TransformerFamily::kGpt2}) {
    SCOPED_TRACE(FamilyName(family));
    TempDir dir;
    auto model = TinyTransformer(family, dir.Sub("teacher"));
    ASSERT_NE(model, nullptr);
    // Sharpen the random teacher's outputs (its logits are near uniform).
    TransformerWeights teacher = model->impl->transformer()->weights;
    const std::string head = family == TransformerFamily::kGpt2 ? "final_ln.weight" : "classifier.weight";
    teacher.tensors[head] = teacher.tensors.at(head) * 30;
    // Louder sublayers, so the heads and neurons pruned away matter to the block outputs.
    for (auto& [name, tensor] : teacher.tensors) {
      if (name.find(".attention.o.weight") != std::string::npos || name.find(".ffn.fc2.weight") != std::string::npos) tensor = tensor * 4;
    }
    const auto groups = TransformerLayerGroups(teacher.config);
    // Heads 1 and 3 of block 0 and half of each FFN go.
    KeptTransformerUnits kept;
    kept[groups[1].name] = torch::tensor({0, 2}, torch::kInt64);
    kept[groups[2].name] = KeptByImportance(UnitImportance(teacher, groups[2]), 0.5);
    kept[groups[4].name] = KeptByImportance(UnitImportance(teacher, groups[4]), 0.5);
    auto student = PruneTransformer(teacher, kept);
    ASSERT_TRUE(student.ok()) << student.status();
    const torch::Tensor untouched = student->tensors.begin()->second.clone();

    auto built = BuildTransformer(teacher);
    ASSERT_TRUE(built.ok()) << built.status();
    Transformer teacher_net = *built;
    std::vector<TokenBatch> train = TeacherLabelledBatches(teacher_net, 6, 1);
    std::vector<TokenBatch> held_out = TeacherLabelledBatches(teacher_net, 3, 2);
    TransformerDistillPlan plan;
    plan.steps = 60;
    plan.options.learning_rate = 1e-3;
    plan.teacher_block = {0, 1};
    plan.teacher_heads = {torch::tensor({0, 2}, torch::kInt64), torch::arange(4, torch::kInt64)};
    plan.block_weight = {1.0, 1.0};
    DistillReport report;
    auto distilled = DistillTransformer(teacher, *student, train, plan, &report);
    ASSERT_TRUE(distilled.ok()) << distilled.status();
    EXPECT_EQ(report.steps, 60);
    EXPECT_LT(report.last_loss, report.first_loss);
    // Same shapes, the inputs untouched, and the student closer to the teacher on unseen batches.
    EXPECT_EQ(distilled->config.layers[0].heads, 2);
    EXPECT_EQ(distilled->tensors.size(), student->tensors.size());
    EXPECT_TRUE(torch::equal(student->tensors.begin()->second, untouched));
    auto before = BuildTransformer(*student);
    auto after = BuildTransformer(*distilled);
    ASSERT_TRUE(before.ok() && after.ok());
    const double error_before = FeatureError(teacher_net, *before, held_out);
    const double error_after = FeatureError(teacher_net, *after, held_out);
    EXPECT_LT(error_after, 0.7 * error_before) << error_before << " -> " << error_after;

    // A recalled task's distillation stops at its next step.
    RecallFlag recalled(true);
    plan.options.recalled = &recalled;
    EXPECT_EQ(DistillTransformer(teacher, *student, train, plan).status().code(), absl::StatusCode::kCancelled);
    plan.options.recalled = nullptr;

    // A plan that does not cover the student's blocks is refused.
    plan.teacher_block = {0};
    EXPECT_FALSE(DistillTransformer(teacher, *student, train, plan).ok());
  }
}

TEST(DistillTest, StagedDistillationEndsAtTheSingleStageShapesAndBytes) {
  TempDir dir;
  auto model = TinyTransformer(TransformerFamily::kBert, dir.Sub("teacher"));
  ASSERT_NE(model, nullptr);
  const TransformerWeights& teacher = model->impl->transformer()->weights;
  Transformer teacher_net = model->impl->transformer()->net;
  std::vector<shrink::v1::LayerAction> actions;
  for (const auto& group : TransformerLayerGroups(teacher.config)) {
    const bool prunable = group.kind == "attention" || group.kind == "ffn";
    actions.push_back(Action(group.name, prunable ? 0.7 : 0.0, 8, 1.0));
  }
  TransformerDistillation distill;
  distill.train = TeacherLabelledBatches(teacher_net, 4, 3);
  distill.options.max_steps = 10;
  auto staged = CompressTransformer(teacher, actions, {}, PruneImportance::kMagnitude, distill);
  auto single = CompressTransformer(teacher, actions);
  ASSERT_TRUE(staged.ok()) << staged.status();
  ASSERT_TRUE(single.ok()) << single.status();
  for (size_t i = 0; i < single->config.layers.size(); ++i) {
    EXPECT_EQ(staged->config.layers[i].heads, single->config.layers[i].heads);
    EXPECT_EQ(staged->config.layers[i].intermediate, single->config.layers[i].intermediate);
  }
  auto staged_bytes = TransformerSafetensorsBytes(*staged);
  auto single_bytes = TransformerSafetensorsBytes(*single);
  ASSERT_TRUE(staged_bytes.ok() && single_bytes.ok());
  EXPECT_EQ(staged_bytes->size(), single_bytes->size());
  // Distillation changed the weights.
  EXPECT_FALSE(torch::equal(staged->tensors.at("blocks.0.ffn.fc1.bias"), single->tensors.at("blocks.0.ffn.fc1.bias")));
}

TEST(DistillTest, DistillingAPrunedCnnRecoversAccuracy) {
  TempDir dir;
  TrainOptions train;
  train.epochs = 1;
  train.max_train_examples = 3000;
  ASSERT_TRUE(TrainCnn(testing::FashionMnist(), train, dir.path(), nullptr).ok());
  auto model = Model::Load(dir.path());
  ASSERT_TRUE(model.ok()) << model.status();
  auto images = ImageDataset::LoadFashionMnist(DebianFashionMnistFiles());
  ASSERT_TRUE(images.ok());
  shrink::v1::Policy policy;
  for (const std::string layer : {"conv1", "conv2", "fc1", "fc2"}) {
    *policy.add_layers() = Action(layer, layer == "fc2" ? 0.0 : 0.8, 8, 1.0);
  }
  ApplyOptions plain;
  ApplyOptions distilled;
  distilled.data = TaskData{"fashion-mnist", *images, nullptr};
  distilled.distill.max_steps = 120;
  auto without = (*model)->Apply(policy, plain);
  auto with = (*model)->Apply(policy, distilled);
  ASSERT_TRUE(without.ok()) << without.status();
  ASSERT_TRUE(with.ok()) << with.status();
  EXPECT_EQ((*with)->Describe().bytes(), (*without)->Describe().bytes());
  // Recalled: Apply stops in the distillation with CANCELLED.
  RecallFlag recalled(true);
  distilled.distill.recalled = &recalled;
  EXPECT_EQ((*model)->Apply(policy, distilled).status().code(), absl::StatusCode::kCancelled);
  EvalOptions eval;
  eval.max_examples = 1000;
  eval.warmup_runs = 0;
  eval.timed_runs = 1;
  auto base = Evaluate(**model, **images, "validation", eval);
  auto a = Evaluate(**without, **images, "validation", eval);
  auto b = Evaluate(**with, **images, "validation", eval);
  ASSERT_TRUE(base.ok() && a.ok() && b.ok());
  std::cerr << "accuracy: teacher " << base->accuracy() << ", pruned " << a->accuracy() << ", pruned + distilled "
            << b->accuracy() << "\n";
  EXPECT_GT(b->accuracy(), a->accuracy() + 0.02);
}

}  // namespace
}  // namespace shrink::worker
