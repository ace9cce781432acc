// The CNN's data-aware pruning criterion (CnnActivationImportance): what its scores measure,
// units it removes that weight magnitude keeps (in both stages of distilled pruning), the
// fallback to magnitude without data, and the choice through Model::Apply.
#include <gtest/gtest.h>

#include "tests/worker/model_test_util.h"
#include "worker/compress/cnn_compress.h"
#include "worker/data/fashion_mnist.h"
#include "worker/compress/transformer_compress.h"
#include "worker/model/cnn_backend.h"

namespace shrink::worker {
namespace {

using testing::TempDir;

// Calibration images: the first `n` training images.
torch::Tensor TrainImages(int64_t n) { return testing::FashionMnist().impl->train.images.narrow(0, 0, n); }

// One action per layer: fp32, the given prune ratios (0 elsewhere), distill strength `distill`.
std::vector<shrink::v1::LayerAction> Actions(const std::map<std::string, double>& prune, double distill = 0) {
  std::vector<shrink::v1::LayerAction> actions;
  for (const char* name : {"conv1", "conv2", "fc1", "fc2"}) {
    shrink::v1::LayerAction action;
    action.set_name(name);
    action.set_bits(32);
    action.set_distill(distill);
    auto ratio = prune.find(name);
    action.set_prune(ratio != prune.end() ? ratio->second : 0);
    actions.push_back(action);
  }
  return actions;
}

// A random CNN with units whose weights are the largest by L1 but which change nothing
// downstream: conv1 channels `dead_conv1` never fire (bias -1000, weights 2.0), conv2
// channel 5 (weights 1.0) feeds all-zero fc1 columns, fc1 neuron 7 (weights 0.1 but 0 from
// conv2 channel 5) feeds a zero fc2 column.
CnnCheckpoint CheckpointWithUselessUnits(const std::string& dir, const std::vector<int64_t>& dead_conv1) {
  auto model = testing::RandomCnn(dir, /*seed=*/21);
  EXPECT_NE(model, nullptr);
  CnnCheckpoint checkpoint = model->impl->cnn()->checkpoint;
  torch::NoGradGuard no_grad;
  auto& t = checkpoint.tensors;
  for (int64_t c : dead_conv1) {
    t["conv1.weight"][c].fill_(2.0);
    t["conv1.bias"][c].fill_(-1000.0);
  }
  t["conv2.weight"][5].fill_(1.0);
  t["fc1.weight"][7].fill_(0.1);
  t["fc1.weight"].narrow(1, 5 * kCnnFeaturePixels, kCnnFeaturePixels).zero_();
  t["fc2.weight"].select(1, 7).zero_();
  return checkpoint;
}

TEST(CnnImportanceTest, ScoresAreWhatRemovingTheUnitChangesInTheNextLayer) {
  TempDir dir;
  auto model = testing::RandomCnn(dir.path(), /*seed=*/4);
  ASSERT_NE(model, nullptr);
  const CnnCheckpoint& checkpoint = model->impl->cnn()->checkpoint;
  torch::Tensor images = TrainImages(40);  // more than one internal batch of 32
  auto scores = CnnActivationImportance(checkpoint, images);
  ASSERT_TRUE(scores.ok()) << scores.status();
  ASSERT_EQ(scores->at("conv1").size(0), 32);
  ASSERT_EQ(scores->at("conv2").size(0), 64);
  ASSERT_EQ(scores->at("fc1").size(0), 128);

  // Independently: the next layer's pre-activation with and without the unit's output.
  torch::NoGradGuard no_grad;
  Cnn& net = model->impl->cnn()->net;
  std::vector<torch::Tensor> features;
  net->forward(images, &features);
  auto removed_change = [](const torch::Tensor& input, int64_t unit, int64_t width, auto next) {
    torch::Tensor without = input.clone();
    without.narrow(1, unit * width, width).zero_();
    torch::Tensor change = next(input) - next(without);  // [n, out] or [n, out, h, w]
    return change.norm(2, {1}).mean().item<double>();     // norm over outputs, mean over images / pixels
  };
  for (int64_t c : {0, 13, 31}) {
    EXPECT_NEAR(scores->at("conv1")[c].item<double>(),
                removed_change(features[0], c, 1, [&](const torch::Tensor& x) { return net->conv2(x); }), 1e-4);
  }
  torch::Tensor flat = features[1].flatten(1);
  for (int64_t c : {0, 40, 63}) {
    EXPECT_NEAR(scores->at("conv2")[c].item<double>(),
                removed_change(flat, c, kCnnFeaturePixels, [&](const torch::Tensor& x) { return net->fc1(x); }), 1e-4);
  }
  for (int64_t j : {0, 64, 127}) {
    EXPECT_NEAR(scores->at("fc1")[j].item<double>(),
                removed_change(features[2], j, 1, [&](const torch::Tensor& x) { return net->fc2(x); }), 1e-5);
  }

  // Bad calibration input is refused naming the expected shape.
  auto bad = CnnActivationImportance(checkpoint, torch::zeros({2, 3, 28, 28}));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(bad.status().message()).find("[n, 1, 28, 28]"), std::string::npos) << bad.status();
}

TEST(CnnImportanceTest, ActivationRemovesUselessUnitsThatMagnitudeKeeps) {
  TempDir dir;
  CnnCheckpoint checkpoint = CheckpointWithUselessUnits(dir.path(), {3});
  torch::Tensor images = TrainImages(64);

  auto scores = CnnActivationImportance(checkpoint, images);
  ASSERT_TRUE(scores.ok()) << scores.status();
  EXPECT_EQ(scores->at("conv1")[3].item<double>(), 0.0);
  EXPECT_EQ(scores->at("conv2")[5].item<double>(), 0.0);
  EXPECT_EQ(scores->at("fc1")[7].item<double>(), 0.0);
  EXPECT_GT(scores->at("conv1").narrow(0, 0, 3).min().item<double>(), 0.0);
  // Each layer prunes exactly its zero-score units (a random fc1 has some neurons that never
  // fire on these images besides the planted one; they are as useless).
  std::map<std::string, double> prune;
  for (const auto& [layer, units] : std::map<std::string, int64_t>{{"conv1", 32}, {"conv2", 64}, {"fc1", 128}}) {
    const int64_t zeros = scores->at(layer).eq(0).sum().item<int64_t>();
    ASSERT_GE(zeros, 1);
    ASSERT_LE(zeros, units / 2) << layer;
    prune[layer] = static_cast<double>(zeros) / static_cast<double>(units);
  }
  const auto actions = Actions(prune);

  auto by_activation = CompressCnn(checkpoint, actions, images, {}, PruneCriterion::kActivation);
  auto by_magnitude = CompressCnn(checkpoint, actions, images, {}, PruneCriterion::kMagnitude);
  ASSERT_TRUE(by_activation.ok()) << by_activation.status();
  ASSERT_TRUE(by_magnitude.ok()) << by_magnitude.status();
  for (const auto& [layer, value] : std::vector<std::pair<std::string, float>>{{"conv1", 2.0f}, {"conv2", 1.0f}, {"fc1", 0.1f}}) {
    // Nonzero entries of each useless unit's row: all equal to its fill value.
    auto has_unit = [&, value = value](const torch::Tensor& w) {
      torch::Tensor rows = w.reshape({w.size(0), -1});
      return (rows.eq(value) | rows.eq(0)).all(1).logical_and(rows.eq(value).any(1)).any().item<bool>();
    };
    EXPECT_FALSE(has_unit(by_activation->tensors.at(layer + ".weight"))) << layer;
    EXPECT_TRUE(has_unit(by_magnitude->tensors.at(layer + ".weight"))) << layer;
  }
  EXPECT_EQ(by_activation->widths.conv1, 32 - 1);
  EXPECT_EQ(by_activation->widths.conv2, 64 - 1);
  EXPECT_EQ(by_activation->widths.fc1, by_magnitude->widths.fc1);

  // Without calibration images the activation criterion is magnitude, exactly.
  auto no_data = CompressCnn(checkpoint, actions, torch::Tensor(), {}, PruneCriterion::kActivation);
  ASSERT_TRUE(no_data.ok()) << no_data.status();
  for (const auto& [name, tensor] : by_magnitude->tensors) {
    EXPECT_TRUE(torch::equal(no_data->tensors.at(name), tensor)) << name;
  }
}

TEST(CnnImportanceTest, BothDistillationStagesRankByActivation) {
  TempDir dir;
  // Two dead conv1 channels, two units pruned: the first stage removes one, the second (ranked
  // again on the distilled student) the other. A dead channel gets no gradient, so it stays dead.
  CnnCheckpoint checkpoint = CheckpointWithUselessUnits(dir.path(), {3, 9});
  const auto actions = Actions({{"conv1", 2.0 / 32}}, /*distill=*/1.0);
  CnnDistillation distill;
  distill.images = TrainImages(256);
  distill.labels = testing::FashionMnist().impl->train.labels.narrow(0, 0, 256);
  distill.options.max_steps = 4;  // 2 steps per stage
  distill.options.batch_size = 16;
  torch::Tensor images = TrainImages(64);

  auto by_activation = CompressCnn(checkpoint, actions, images, distill, PruneCriterion::kActivation);
  auto by_magnitude = CompressCnn(checkpoint, actions, images, distill, PruneCriterion::kMagnitude);
  ASSERT_TRUE(by_activation.ok()) << by_activation.status();
  ASSERT_TRUE(by_magnitude.ok()) << by_magnitude.status();
  ASSERT_EQ(by_activation->widths.conv1, 30);
  ASSERT_EQ(by_magnitude->widths.conv1, 30);
  auto dead_rows = [](const CnnCheckpoint& c) { return c.tensors.at("conv1.bias").eq(-1000.0f).sum().item<int64_t>(); };
  EXPECT_EQ(dead_rows(*by_activation), 0);
  EXPECT_EQ(dead_rows(*by_magnitude), 2);
  // Distillation ran: the surviving live weights moved.
  EXPECT_FALSE(torch::equal(by_activation->tensors.at("fc2.weight"), checkpoint.tensors.at("fc2.weight")));
}

TEST(CnnImportanceTest, ApplyRanksOnTheTasksTrainingImagesWhenAskedTo) {
  TempDir dir;
  auto model = testing::RandomCnn(dir.path(), /*seed=*/9);
  ASSERT_NE(model, nullptr);
  shrink::v1::Policy policy;
  policy.mutable_uniform()->set_prune(0.5);
  policy.mutable_uniform()->set_bits(32);
  ApplyOptions options;
  options.data.name = "fashion-mnist";
  // A non-owning handle: the dataset lives for the whole test process.
  options.data.images = std::shared_ptr<const ImageDataset>(&testing::FashionMnist(), [](const ImageDataset*) {});
  options.criterion = PruneCriterion::kActivation;
  auto by_activation = model->Apply(policy, options);
  ASSERT_TRUE(by_activation.ok()) << by_activation.status();
  options.criterion = PruneCriterion::kMagnitude;
  auto by_magnitude = model->Apply(policy, options);
  ASSERT_TRUE(by_magnitude.ok()) << by_magnitude.status();

  // The same units CnnActivationImportance picks on the first 128 training images.
  const CnnCheckpoint& original = model->impl->cnn()->checkpoint;
  auto scores = CnnActivationImportance(original, TrainImages(128));
  ASSERT_TRUE(scores.ok()) << scores.status();
  const CnnCheckpoint& applied = (*by_activation)->impl->cnn()->checkpoint;
  for (const char* layer : {"conv1", "conv2", "fc1"}) {
    torch::Tensor kept = KeptByImportance(scores->at(layer), 0.5);
    EXPECT_TRUE(torch::equal(applied.tensors.at(std::string(layer) + ".bias"),
                             original.tensors.at(std::string(layer) + ".bias").index_select(0, kept)))
        << layer;
  }
  // Which differs from magnitude's choice on at least one layer.
  const CnnCheckpoint& l1 = (*by_magnitude)->impl->cnn()->checkpoint;
  bool differs = false;
  for (const char* layer : {"conv1", "conv2", "fc1"}) {
    differs = differs || !torch::equal(applied.tensors.at(std::string(layer) + ".bias"),
                                       l1.tensors.at(std::string(layer) + ".bias"));
  }
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace shrink::worker
