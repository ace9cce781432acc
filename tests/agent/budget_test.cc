#include "tests/test_util/cnn_description.h"
#include "agent/budget.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/policy.h"

namespace shrink::agent {
namespace {

// Bytes of the uncompressed CNN by the estimate: 4 bytes per weight and bias,
// i.e. 4 * 421642 params.
constexpr double kCnnWeightBytes = 1686568;
// config.json and the safetensors header: on disk but not weights.
constexpr int64_t kCnnOverhead = testing::kCnnDescriptionOverhead;

// The Fashion-MNIST CNN as the worker describes it.
v1::ModelDescription Cnn() { return testing::CnnDescription(); }

v1::LayerInfo Layer(const std::string& name, const std::string& kind, int64_t in, int64_t out,
                    int64_t kernel_elements, bool prunable, int64_t input_group) {
  return testing::MakeLayer(name, kind, in, out, kernel_elements, prunable, input_group);
}

v1::LayerAction Action(const std::string& name, double prune, int bits) {
  v1::LayerAction a;
  a.set_name(name);
  a.set_prune(prune);
  a.set_bits(bits);
  return a;
}

std::vector<v1::LayerAction> Uniform(const v1::ModelDescription& model, double prune, int bits) {
  std::vector<v1::LayerAction> actions;
  for (const auto& layer : model.layers()) {
    actions.push_back(Action(layer.name(), layer.prunable() ? prune : 0.0, bits));
  }
  return actions;
}

TEST(BudgetTest, CnnParamsMatchTheArchitecture) {
  // Guards the fixture the other tests compute by hand from.
  EXPECT_EQ(Cnn().params(), 320 + 18496 + 401536 + 1290);
}

TEST(EstimateBytesTest, NoActionsIsFullPrecisionWeightsAndBiases) {
  EXPECT_DOUBLE_EQ(EstimateBytes(Cnn(), {}), kCnnWeightBytes);
}

TEST(EstimateBytesTest, IdentityActionsEqualNoActions) {
  EXPECT_DOUBLE_EQ(EstimateBytes(Cnn(), Uniform(Cnn(), 0.0, 32)), kCnnWeightBytes);
  EXPECT_DOUBLE_EQ(EstimateBytes(Cnn(), Uniform(Cnn(), 0.0, 0)), kCnnWeightBytes);
}

TEST(EstimateBytesTest, Int8IsOneBytePerWeightPlusBiasAndScale) {
  // weights 288 + 18432 + 401408 + 1280; 8 bytes (bias + scale) per output unit (234).
  EXPECT_DOUBLE_EQ(EstimateBytes(Cnn(), Uniform(Cnn(), 0.0, 8)), 421408 + 8 * 234);
}

TEST(EstimateBytesTest, Fp16IsTwoBytesPerWeightPlusFp32Bias) {
  EXPECT_DOUBLE_EQ(EstimateBytes(Cnn(), Uniform(Cnn(), 0.0, 16)), 2 * 421408 + 4 * 234);
  // 9..16 bits are all stored as fp16.
  EXPECT_DOUBLE_EQ(EstimateBytes(Cnn(), Uniform(Cnn(), 0.0, 12)), 2 * 421408 + 4 * 234);
}

TEST(EstimateBytesTest, FourToSevenBitsArePackedCodesPlusFp16ScaleAndZeroPerGroup) {
  // Rows of cols inputs: ceil(cols / 128) groups per row, 4 bytes (fp16 scale + zero) each.
  // conv1 [32, 9]: 1 group; conv2 [64, 288]: 3; fc1 [128, 3136]: 25; fc2 [10, 128]: 1.
  const double codes = (288 * 4 + 7) / 8 + (18432 * 4 + 7) / 8 + (401408 * 4 + 7) / 8 + (1280 * 4 + 7) / 8;
  const double groups = 32 * 1 + 64 * 3 + 128 * 25 + 10 * 1;
  EXPECT_DOUBLE_EQ(EstimateBytes(Cnn(), Uniform(Cnn(), 0.0, 4)), codes + 4 * groups + 4 * 234);
  // 5 bits: 5/8 of a byte per weight, same groups.
  const double codes5 = (288 * 5 + 7) / 8 + (18432 * 5 + 7) / 8 + (401408 * 5 + 7) / 8 + (1280 * 5 + 7) / 8;
  EXPECT_DOUBLE_EQ(EstimateBytes(Cnn(), Uniform(Cnn(), 0.0, 5)), codes5 + 4 * groups + 4 * 234);
}

TEST(EstimateBytesTest, TransformerSublayersArePricedPerModuleAndDoNotChain) {
  // One block of a BERT-like model: hidden 256, 4 heads of 64, FFN 1024, vocab+positions 1000.
  v1::ModelDescription model;
  v1::LayerInfo embeddings = Layer("embeddings", "embedding", 1000, 256, 1, false, 1);
  embeddings.set_params(1000 * 256 + 2 * 256);
  *model.add_layers() = embeddings;
  *model.add_layers() = Layer("encoder.layer.0.attention", "attention", 256, 4, 4 * 64, true, 1);
  *model.add_layers() = Layer("encoder.layer.0.ffn", "ffn", 256, 1024, 2, true, 1);
  const std::vector<v1::LayerAction> actions = {Action("embeddings", 0, 4), Action("encoder.layer.0.attention", 0.5, 8),
                                                Action("encoder.layer.0.ffn", 0.25, 5)};
  // embeddings: 1000 rows of 256 at 4 bits (2 groups per row) + LayerNorm.
  const double embedding = 1000 * 256 / 2 + 4 * 1000 * 2 + 4 * 512;
  // attention: 2 of 4 heads left (inner 128): q, k, v [128, 256] and o [256, 128] int8 with
  // row scales; biases 3 * 128 + 256 and the LayerNorm.
  const double attention = 4 * 128 * 256 + 4 * (3 * 128 + 256) + 4 * (3 * 128 + 3 * 256);
  // ffn: 768 neurons left: fc1 [768, 256] (2 groups per row), fc2 [256, 768] (6 groups).
  const double ffn = (768 * 256 * 5 + 7) / 8 * 2 + 4 * (768 * 2 + 256 * 6) + 4 * (768 + 3 * 256);
  EXPECT_DOUBLE_EQ(EstimateBytes(model, actions), embedding + attention + ffn);
}

TEST(EstimateBytesTest, TransformerBlockAtMaximumPruneCountsAsRemovedButOneStays) {
  v1::ModelDescription model;
  for (int b = 0; b < 2; ++b) {
    *model.add_layers() = Layer("h." + std::to_string(b) + ".attention", "attention", 64, 4, 4 * 16, true, 1);
    *model.add_layers() = Layer("h." + std::to_string(b) + ".ffn", "ffn", 64, 256, 2, true, 1);
  }
  auto all = Uniform(model, kMaxPrune, 32);
  // Block 0 goes; block 1 (the last left) is pruned to 1 head of 16 and 26 of 256 neurons.
  const double block1 = 4.0 * (4 * 16 * 64 + 3 * 16 + 3 * 64) + 4.0 * (2 * 26 * 64 + 26 + 3 * 64);
  EXPECT_DOUBLE_EQ(EstimateBytes(model, all), block1);
  // One sublayer at the maximum is ordinary pruning.
  auto half = Uniform(model, 0.0, 32);
  half[0].set_prune(kMaxPrune);
  EXPECT_GT(EstimateBytes(model, half), EstimateBytes(model, all));
}

TEST(EstimateBytesTest, MixedPolicyByHand) {
  // conv1: unchanged, 1x32x9 fp32 + bias               = 1152 + 128   = 1280
  // conv2: half its 64 channels pruned, int8: 32x32x9  = 9216 + 32*8  = 9472
  // fc1: inputs shrink to 32 channels * 49 pixels = 1568; a quarter of 128
  //      units pruned -> 96; fp16: 1568*96*2           = 301056 + 96*4 = 301440
  // fc2: inputs shrink to 96; int8: 96*10              = 960 + 10*8    = 1040
  std::vector<v1::LayerAction> actions = {Action("conv1", 0.0, 32), Action("conv2", 0.5, 8),
                                          Action("fc1", 0.25, 16), Action("fc2", 0.0, 8)};
  EXPECT_DOUBLE_EQ(EstimateBytes(Cnn(), actions), 1280 + 9472 + 301440 + 1040);
}

TEST(EstimateBytesTest, PruningConv2ShrinksFc1InputsByFortyNinePerChannel) {
  std::vector<v1::LayerAction> actions = Uniform(Cnn(), 0.0, 32);
  actions[1].set_prune(0.25);  // 16 of conv2's 64 channels go
  // conv2 loses 16 * (32*9 weights + 1 bias) * 4 bytes; fc1 loses 16 * 49 inputs * 128 units * 4 bytes.
  double expected = kCnnWeightBytes - 16.0 * (32 * 9 + 1) * 4 - 16.0 * 49 * 128 * 4;
  EXPECT_DOUBLE_EQ(EstimateBytes(Cnn(), actions), expected);
}

TEST(EstimateBytesTest, PruneRatioRoundsToNearestUnit) {
  std::vector<v1::LayerAction> actions = Uniform(Cnn(), 0.0, 32);
  actions[0].set_prune(0.9);  // 28.8 of conv1's 32 channels -> 29 removed, 3 kept
  // conv1: 3 * (9 + 1) * 4 = 120; conv2 sees 3 inputs: 64 * (3*9 + 1) * 4 = 7168.
  double expected = 120 + 7168 + (1606144 + 5160);
  EXPECT_DOUBLE_EQ(EstimateBytes(Cnn(), actions), expected);
}

TEST(EstimateBytesTest, AtLeastOneUnitSurvives) {
  v1::ModelDescription model;
  *model.add_layers() = Layer("tiny", "linear", 4, 1, 1, true, 1);
  *model.add_layers() = Layer("out", "linear", 1, 2, 1, false, 1);
  // prune 0.9 of one unit would round to removing it; one must stay.
  EXPECT_DOUBLE_EQ(EstimateBytes(model, {Action("tiny", 0.9, 32), Action("out", 0.0, 32)}),
                   EstimateBytes(model, {}));
}

TEST(EstimateBytesTest, PruneOnNonPrunableLayerIsIgnored) {
  std::vector<v1::LayerAction> actions = Uniform(Cnn(), 0.0, 32);
  actions[3].set_prune(0.5);
  EXPECT_DOUBLE_EQ(EstimateBytes(Cnn(), actions), kCnnWeightBytes);
}

TEST(EstimateBytesTest, MissingTrailingActionsLeaveLayersUnchanged) {
  std::vector<v1::LayerAction> actions = {Action("conv1", 0.0, 8)};
  // conv1 int8: 288 + 32*8 = 544 instead of 1280.
  EXPECT_DOUBLE_EQ(EstimateBytes(Cnn(), actions), kCnnWeightBytes - 1280 + 544);
}

TEST(EstimateSizeRatioTest, NoCompressionIsOne) {
  EXPECT_DOUBLE_EQ(EstimateSizeRatio(Cnn(), {}), 1.0);
  EXPECT_DOUBLE_EQ(EstimateSizeRatio(Cnn(), Uniform(Cnn(), 0.0, 32)), 1.0);
}

TEST(EstimateSizeRatioTest, CountsFileOverheadOnBothSidesAndItsGrowthOnTheCandidate) {
  std::vector<v1::LayerAction> actions = {Action("conv1", 0.0, 32), Action("conv2", 0.5, 8),
                                          Action("fc1", 0.25, 16), Action("fc2", 0.0, 8)};
  // conv2, fc1 and fc2 are compressed (3 config entries); the int8 ones add a scale each.
  const double growth = 3 * kConfigBytesPerCompressedLayer + 2 * kHeaderBytesPerTensor;
  EXPECT_DOUBLE_EQ(EstimateMetadataGrowth(Cnn(), actions), growth);
  EXPECT_DOUBLE_EQ(EstimateSizeRatio(Cnn(), actions),
                   (313232.0 + kCnnOverhead + growth) / (kCnnWeightBytes + kCnnOverhead));
}

TEST(EstimateMetadataGrowthTest, PackedLayersAddScalesAndZerosPerMatrix) {
  EXPECT_DOUBLE_EQ(EstimateMetadataGrowth(Cnn(), Uniform(Cnn(), 0.0, 32)), 0.0);
  // Four layers, each one weight matrix stored as codes + scales + zeros.
  EXPECT_DOUBLE_EQ(EstimateMetadataGrowth(Cnn(), Uniform(Cnn(), 0.0, 4)),
                   4 * kConfigBytesPerCompressedLayer + 4 * 2 * kHeaderBytesPerTensor);
  // Pruning alone changes the config, not the tensors' names.
  EXPECT_DOUBLE_EQ(EstimateMetadataGrowth(Cnn(), Uniform(Cnn(), 0.5, 32)), 3 * kConfigBytesPerCompressedLayer);
}

TEST(EstimateMetadataGrowthTest, AttentionHasFourMatricesAndEmbeddingsThreeTables) {
  v1::ModelDescription model;
  *model.add_layers() = Layer("embeddings", "embedding", 100, 16, 1, false, 1);
  *model.add_layers() = Layer("encoder.layer.0.attention", "attention", 16, 2, 16, true, 1);
  std::vector<v1::LayerAction> actions = {Action("embeddings", 0.0, 8), Action("encoder.layer.0.attention", 0.0, 8)};
  EXPECT_DOUBLE_EQ(EstimateMetadataGrowth(model, actions),
                   2 * kConfigBytesPerCompressedLayer + (3 + 4) * kHeaderBytesPerTensor);
}

TEST(EstimateSizeRatioTest, NoOverheadWhenModelBytesUnknown) {
  v1::ModelDescription model = Cnn();
  model.set_bytes(0);
  EXPECT_DOUBLE_EQ(EstimateSizeRatio(model, {}), 1.0);
  EXPECT_DOUBLE_EQ(EstimateSizeRatio(model, Uniform(model, 0.0, 8)), (421408.0 + 8 * 234) / kCnnWeightBytes);
}

TEST(ClampToSizeTargetTest, ActionsAlreadyMeetingTargetAreUnchanged) {
  std::vector<v1::LayerAction> actions = Uniform(Cnn(), 0.2, 16);
  std::vector<v1::LayerAction> before = actions;
  EXPECT_TRUE(ClampToSizeTarget(Cnn(), 0.9, &actions));
  for (size_t i = 0; i < actions.size(); ++i) {
    EXPECT_DOUBLE_EQ(actions[i].prune(), before[i].prune());
    EXPECT_EQ(actions[i].bits(), before[i].bits());
  }
}

TEST(ClampToSizeTargetTest, LowersBitsOfLargestLayerFirstAndStopsWhenMet) {
  // fc1 holds 95% of the weights: int8 there alone gives ~0.286, which meets 0.3.
  std::vector<v1::LayerAction> actions = Uniform(Cnn(), 0.0, 32);
  ASSERT_TRUE(ClampToSizeTarget(Cnn(), 0.3, &actions));
  EXPECT_EQ(EffectiveBits(actions[0].bits()), 32);
  EXPECT_EQ(EffectiveBits(actions[1].bits()), 32);
  EXPECT_EQ(actions[2].bits(), 8);
  EXPECT_EQ(EffectiveBits(actions[3].bits()), 32);
  for (const auto& a : actions) EXPECT_DOUBLE_EQ(a.prune(), 0.0) << a.name();
  EXPECT_LE(EstimateSizeRatio(Cnn(), actions), 0.3);
}

TEST(ClampToSizeTargetTest, LowersAllBitsBeforeAnyPruning) {
  std::vector<v1::LayerAction> actions = Uniform(Cnn(), 0.0, 16);
  ASSERT_TRUE(ClampToSizeTarget(Cnn(), 0.25, &actions));
  // All-int8 is ~0.2513, just above 0.25: the largest layer (fc1) then goes to 4 bits,
  // which meets it without any pruning.
  EXPECT_GT(EstimateSizeRatio(Cnn(), Uniform(Cnn(), 0.0, 8)), 0.25);
  EXPECT_EQ(actions[0].bits(), 8);
  EXPECT_EQ(actions[1].bits(), 8);
  EXPECT_EQ(actions[2].bits(), 4);
  EXPECT_EQ(actions[3].bits(), 8);
  for (const auto& a : actions) EXPECT_DOUBLE_EQ(a.prune(), 0.0) << a.name();
  EXPECT_LE(EstimateSizeRatio(Cnn(), actions), 0.25);
}

TEST(ClampToSizeTargetTest, MeetsQuarterTarget) {
  std::vector<v1::LayerAction> actions = Uniform(Cnn(), 0.0, 32);
  EXPECT_TRUE(ClampToSizeTarget(Cnn(), 0.25, &actions));
  EXPECT_LE(EstimateSizeRatio(Cnn(), actions), 0.25);
}

TEST(ClampToSizeTargetTest, MeetsTenthTargetByEvenPruningWithinLimits) {
  std::vector<v1::LayerAction> actions = Uniform(Cnn(), 0.0, 32);
  ASSERT_TRUE(ClampToSizeTarget(Cnn(), 0.1, &actions));
  EXPECT_LE(EstimateSizeRatio(Cnn(), actions), 0.1);
  // Pruned evenly from zero: the three prunable layers share one ratio.
  EXPECT_GT(actions[0].prune(), 0.0);
  EXPECT_DOUBLE_EQ(actions[0].prune(), actions[1].prune());
  EXPECT_DOUBLE_EQ(actions[1].prune(), actions[2].prune());
  EXPECT_LE(actions[0].prune(), kMaxPrune);
  EXPECT_DOUBLE_EQ(actions[3].prune(), 0.0);
  // All-4-bit (~0.13) does not reach 0.1 alone: every layer is at 4 bits before pruning.
  EXPECT_GT(EstimateSizeRatio(Cnn(), Uniform(Cnn(), 0.0, 4)), 0.1);
  for (const auto& a : actions) EXPECT_EQ(a.bits(), 4) << a.name();
}

TEST(ClampToSizeTargetTest, PrunesOnlyAsMuchAsNeeded) {
  std::vector<v1::LayerAction> actions = Uniform(Cnn(), 0.0, 32);
  ASSERT_TRUE(ClampToSizeTarget(Cnn(), 0.1, &actions));
  // One step (0.01) less pruning would not have met the target.
  std::vector<v1::LayerAction> gentler = actions;
  for (int i = 0; i < 3; ++i) gentler[i].set_prune(actions[i].prune() - 0.01);
  EXPECT_GT(EstimateSizeRatio(Cnn(), gentler), 0.1);
}

TEST(ClampToSizeTargetTest, ResultIsAValidPolicy) {
  for (double target : {0.5, 0.25, 0.1, 0.05, 0.01}) {
    std::vector<v1::LayerAction> actions = Uniform(Cnn(), 0.0, 32);
    ClampToSizeTarget(Cnn(), target, &actions);
    auto resolved = ResolvePolicy(ToPolicy(actions), Cnn());
    EXPECT_TRUE(resolved.ok()) << target << ": " << resolved.status();
  }
}

TEST(ClampToSizeTargetTest, ImpossibleTargetReportsFalseAtMaximumPrune) {
  std::vector<v1::LayerAction> actions = Uniform(Cnn(), 0.0, 32);
  EXPECT_FALSE(ClampToSizeTarget(Cnn(), 0.001, &actions));
  EXPECT_GT(EstimateSizeRatio(Cnn(), actions), 0.001);
  for (int i = 0; i < 3; ++i) {
    EXPECT_LE(actions[i].prune(), kMaxPrune) << actions[i].name();
    EXPECT_NEAR(actions[i].prune(), kMaxPrune, 1e-9) << actions[i].name();
    EXPECT_EQ(actions[i].bits(), 4);
  }
  EXPECT_DOUBLE_EQ(actions[3].prune(), 0.0);
  EXPECT_EQ(actions[3].bits(), 4);
}

TEST(ClampToSizeTargetTest, NeverExceedsMaximumPruneFromAHighStart) {
  std::vector<v1::LayerAction> actions = {Action("conv1", 0.895, 8), Action("conv2", 0.3, 8),
                                          Action("fc1", 0.05, 8), Action("fc2", 0.0, 8)};
  ClampToSizeTarget(Cnn(), 0.02, &actions);
  for (const auto& a : actions) EXPECT_LE(a.prune(), kMaxPrune) << a.name();
  EXPECT_DOUBLE_EQ(actions[0].prune(), kMaxPrune);
}

TEST(ClampToSizeTargetTest, NeverPrunesTheNonPrunableLayer) {
  for (double target : {0.25, 0.1, 0.01, 0.001}) {
    std::vector<v1::LayerAction> actions = Uniform(Cnn(), 0.0, 32);
    ClampToSizeTarget(Cnn(), target, &actions);
    EXPECT_DOUBLE_EQ(actions[3].prune(), 0.0) << target;
  }
}

TEST(OfferedBitWidthsTest, WidthsNoUniformPolicyCanAffordAreLeftOut) {
  // Pruning every CNN layer by kClampPlanPrune leaves few weights (conv2's pruning also
  // shrinks fc1's inputs): every width fits a loose target. Between the 8- and 16-bit
  // uniform sizes only 4 and 8 are offered.
  EXPECT_EQ(OfferedBitWidths(Cnn(), 1.0), (std::vector<int>{4, 8, 16, 32}));
  EXPECT_EQ(OfferedBitWidths(Cnn(), 0.25), (std::vector<int>{4, 8, 16, 32}));
  const double at8 = EstimateSizeRatio(Cnn(), Uniform(Cnn(), kClampPlanPrune, 8));
  const double at16 = EstimateSizeRatio(Cnn(), Uniform(Cnn(), kClampPlanPrune, 16));
  EXPECT_EQ(OfferedBitWidths(Cnn(), (at8 + at16) / 2), (std::vector<int>{4, 8}));
  // 4 bits is always offered, even when nothing fits.
  EXPECT_EQ(OfferedBitWidths(Cnn(), 1e-6), (std::vector<int>{4}));
}

TEST(ToPolicyTest, WrapsActionsInOrder) {
  std::vector<v1::LayerAction> actions = Uniform(Cnn(), 0.3, 8);
  v1::Policy policy = ToPolicy(actions);
  EXPECT_FALSE(policy.has_uniform());
  ASSERT_EQ(policy.layers_size(), 4);
  EXPECT_EQ(policy.layers(0).name(), "conv1");
  EXPECT_EQ(policy.layers(3).name(), "fc2");
  EXPECT_DOUBLE_EQ(policy.layers(2).prune(), 0.3);
  EXPECT_EQ(policy.layers(1).bits(), 8);
}

}  // namespace
}  // namespace shrink::agent
