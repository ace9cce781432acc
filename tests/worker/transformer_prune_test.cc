// Transformer pruning extras: whole blocks removed when a policy maxes out both
// of a block's sublayers (the pruned model computes what the original computes
// with that block skipped), and the activation-based importance criterion.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/files.h"
#include "common/policy.h"
#include "tests/worker/transformer_test_util.h"
#include "worker/compress/transformer_compress.h"
#include "worker/nn/transformer_build.h"

namespace shrink::worker {
namespace {

using testing::TempDir;
using testing::TinyBatch;
using testing::TinyTransformer;
using testing::TransformerLogits;

shrink::v1::Policy Policy(const TransformerConfig& c, const std::map<std::string, double>& prune) {
  shrink::v1::Policy policy;
  for (const auto& group : TransformerLayerGroups(c)) {
    auto* a = policy.add_layers();
    a->set_name(group.name);
    a->set_bits(32);
    auto it = prune.find(group.name);
    if (it != prune.end()) a->set_prune(it->second);
  }
  return policy;
}

TEST(TransformerPruneTest, BlockWithBothSublayersAtMaximumPruneIsRemovedAndSkipped) {
  for (TransformerFamily family : {TransformerFamily::kBert, TransformerFamily::kGpt2}) {
    SCOPED_TRACE(FamilyName(family));
    TempDir dir;
    auto model = TinyTransformer(family, dir.Sub("a"));
    ASSERT_NE(model, nullptr);
    const TransformerConfig& c = model->impl->transformer()->weights.config;
    const std::string b0 = BlockPrefix(c) + "0", b1 = BlockPrefix(c) + "1";
    // Block 0 goes whole; block 1 loses half its FFN (still pruned by magnitude).
    auto pruned = model->Apply(Policy(c, {{b0 + ".attention", kMaxPrune}, {b0 + ".ffn", kMaxPrune}, {b1 + ".ffn", 0.5}}));
    ASSERT_TRUE(pruned.ok()) << pruned.status();
    const auto d = (*pruned)->Describe();
    EXPECT_EQ(d.layers_size(), model->Describe().layers_size() - 2);
    EXPECT_EQ(d.layers(1).name(), b0 + ".attention");  // the old block 1, renumbered
    EXPECT_EQ(d.layers(2).out_features(), 32);

    // The original with block 0 skipped and block 1's pruned neurons zeroed computes the same.
    TransformerBackend* original = model->impl->transformer();
    const auto groups = TransformerLayerGroups(c);
    torch::Tensor neurons = KeptByImportance(UnitImportance(original->weights, groups[4]), 0.5);
    auto skipped = BuildTransformer(original->weights);
    ASSERT_TRUE(skipped.ok());
    Transformer net = *skipped;
    {
      torch::NoGradGuard no_grad;
      torch::Tensor drop = torch::ones({64}, torch::kBool);
      drop.index_fill_(0, neurons, false);
      net->block_list[1]->ffn->fc1->weight.index_put_({drop}, 0.0);
      net->block_list[1]->ffn->fc1->bias.index_put_({drop}, 0.0);
    }
    net->block_list.erase(net->block_list.begin());
    auto [ids, mask] = TinyBatch();
    torch::NoGradGuard no_grad;
    torch::Tensor expected = net->forward(ids, mask);
    torch::Tensor actual = TransformerLogits(**pruned, ids, mask);
    EXPECT_TRUE(torch::allclose(expected, actual, 1e-5, 1e-6)) << (expected - actual).abs().max().item<double>();

    ASSERT_TRUE((*pruned)->Save(dir.Sub("p")).ok());
    auto config = nlohmann::json::parse(*ReadFile(dir.Sub("p/config.json")));
    EXPECT_EQ(config["shrink_layers"].size(), 1u);
    auto reloaded = Model::Load(dir.Sub("p"));
    ASSERT_TRUE(reloaded.ok()) << reloaded.status();
    EXPECT_TRUE(torch::equal(actual, TransformerLogits(**reloaded, ids, mask)));
  }
}

TEST(TransformerPruneTest, OnlyOneMaxedSublayerKeepsTheBlockAndTheLastBlockAlwaysStays) {
  TempDir dir;
  auto model = TinyTransformer(TransformerFamily::kBert, dir.path());
  ASSERT_NE(model, nullptr);
  const TransformerConfig& c = model->impl->transformer()->weights.config;
  auto one = model->Apply(Policy(c, {{"encoder.layer.0.attention", kMaxPrune}}));
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ((*one)->impl->transformer()->weights.config.num_layers, 2);
  EXPECT_EQ((*one)->impl->transformer()->weights.config.layers[0].heads, 1);  // round(3.6) of 4 removed
  std::map<std::string, double> all;
  for (const auto& group : TransformerLayerGroups(c)) {
    if (group.block >= 0) all[group.name] = kMaxPrune;
  }
  auto most = model->Apply(Policy(c, all));
  ASSERT_TRUE(most.ok()) << most.status();
  EXPECT_EQ((*most)->impl->transformer()->weights.config.num_layers, 1);
  // Quantized blocks after a removed one keep their storage under their new names.
  auto policy = Policy(c, {{"encoder.layer.0.attention", kMaxPrune}, {"encoder.layer.0.ffn", kMaxPrune}});
  policy.mutable_layers(3)->set_bits(8);  // encoder.layer.1.attention
  policy.mutable_layers(4)->set_bits(4);  // encoder.layer.1.ffn
  auto mixed = model->Apply(policy);
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  const auto& storage = (*mixed)->impl->transformer()->weights.config.storage;
  EXPECT_EQ(storage.at("encoder.layer.0.attention").bits, 8);
  EXPECT_EQ(storage.at("encoder.layer.0.ffn").bits, 4);
  EXPECT_EQ(storage.count("encoder.layer.1.ffn"), 0u);
}

TEST(TransformerPruneTest, ActivationImportancePrunesADeadNeuronThatMagnitudeKeeps) {
  TempDir dir;
  auto model = TinyTransformer(TransformerFamily::kBert, dir.path());
  ASSERT_NE(model, nullptr);
  TransformerWeights weights = model->impl->transformer()->weights;
  // Neuron 5 of block 0: never active (GELU(-20) ~ 0) but with huge weights.
  {
    torch::NoGradGuard no_grad;
    weights.tensors["blocks.0.ffn.fc1.weight"][5].fill_(0.0);
    weights.tensors["blocks.0.ffn.fc1.bias"][5].fill_(-20.0);
    weights.tensors["blocks.0.ffn.fc2.weight"].select(1, 5).fill_(5.0);
  }
  std::vector<shrink::v1::LayerAction> actions;
  for (const auto& group : TransformerLayerGroups(weights.config)) {
    shrink::v1::LayerAction a;
    a.set_name(group.name);
    a.set_bits(32);
    if (group.name == "encoder.layer.0.ffn") a.set_prune(0.25);
    actions.push_back(a);
  }
  torch::manual_seed(3);
  std::vector<CalibrationBatch> calibration;
  for (int i = 0; i < 2; ++i) {
    torch::Tensor ids = torch::randint(2, 60, {8, 16}, torch::kInt64);
    calibration.push_back({ids, torch::ones_like(ids)});
  }
  auto by_activation = CompressTransformer(weights, actions, calibration, PruneImportance::kActivation);
  auto by_magnitude = CompressTransformer(weights, actions, calibration, PruneImportance::kMagnitude);
  ASSERT_TRUE(by_activation.ok()) << by_activation.status();
  ASSERT_TRUE(by_magnitude.ok()) << by_magnitude.status();
  auto has_dead_neuron = [](const TransformerWeights& w) {
    return (w.tensors.at("blocks.0.ffn.fc2.weight").eq(5.0).sum(0) == 32).any().item<bool>();
  };
  EXPECT_FALSE(has_dead_neuron(*by_activation));
  EXPECT_TRUE(has_dead_neuron(*by_magnitude));
  EXPECT_EQ(by_activation->tensors.at("blocks.0.ffn.fc1.weight").size(0), 48);

  // The scores themselves: mean |activation| times the fc2 column's L2 norm.
  auto inputs = RecordDenseInputs(weights, calibration, {"blocks.0.ffn.fc2"}, 10000);
  ASSERT_TRUE(inputs.ok());
  const auto groups = TransformerLayerGroups(weights.config);
  torch::Tensor scores = ActivationImportance(weights, groups[2], inputs->at("blocks.0.ffn.fc2"));
  torch::Tensor expected = inputs->at("blocks.0.ffn.fc2").abs().mean(0).to(torch::kFloat64) *
                           weights.tensors.at("blocks.0.ffn.fc2.weight").to(torch::kFloat64).norm(2, {0});
  EXPECT_TRUE(torch::allclose(scores, expected, 1e-6, 1e-9));
  EXPECT_LT(scores[5].item<double>(), 1e-6);
}

}  // namespace
}  // namespace shrink::worker
