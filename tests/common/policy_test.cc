#include "common/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "google/protobuf/util/message_differencer.h"

namespace shrink {
namespace {

using ::testing::HasSubstr;

v1::LayerInfo Layer(const std::string& name, bool prunable) {
  v1::LayerInfo layer;
  layer.set_name(name);
  layer.set_prunable(prunable);
  return layer;
}

// conv1, conv2, fc1 prunable; fc2 (the output layer) not.
v1::ModelDescription FourLayerModel() {
  v1::ModelDescription model;
  *model.add_layers() = Layer("conv1", true);
  *model.add_layers() = Layer("conv2", true);
  *model.add_layers() = Layer("fc1", true);
  *model.add_layers() = Layer("fc2", false);
  return model;
}

v1::LayerAction Action(const std::string& name, double prune, int bits, double distill = 0) {
  v1::LayerAction a;
  a.set_name(name);
  a.set_prune(prune);
  a.set_bits(bits);
  a.set_distill(distill);
  return a;
}

v1::Policy PerLayer(const std::vector<v1::LayerAction>& actions) {
  v1::Policy p;
  for (const auto& a : actions) *p.add_layers() = a;
  return p;
}

v1::Policy FullPerLayerPolicy() {
  return PerLayer({Action("conv1", 0.25, 8), Action("conv2", 0.5, 16, 0.2), Action("fc1", 0.75, 32),
                   Action("fc2", 0.0, 8)});
}

// ---- ParsePolicyJson ----

TEST(ParsePolicyJsonTest, PerLayerForm) {
  auto policy = ParsePolicyJson(R"({"layers": [{"name": "conv1", "prune": 0.5, "bits": 8, "distill": 0.2}]})");
  ASSERT_TRUE(policy.ok()) << policy.status();
  ASSERT_EQ(policy->layers_size(), 1);
  EXPECT_FALSE(policy->has_uniform());
  EXPECT_EQ(policy->layers(0).name(), "conv1");
  EXPECT_DOUBLE_EQ(policy->layers(0).prune(), 0.5);
  EXPECT_EQ(policy->layers(0).bits(), 8);
  EXPECT_DOUBLE_EQ(policy->layers(0).distill(), 0.2);
}

TEST(ParsePolicyJsonTest, PerLayerFormKeepsOrderOfSeveralLayers) {
  auto policy = ParsePolicyJson(
      R"({"layers": [{"name": "fc1", "prune": 0.1}, {"name": "conv1", "bits": 16}]})");
  ASSERT_TRUE(policy.ok()) << policy.status();
  ASSERT_EQ(policy->layers_size(), 2);
  EXPECT_EQ(policy->layers(0).name(), "fc1");
  EXPECT_DOUBLE_EQ(policy->layers(0).prune(), 0.1);
  EXPECT_EQ(policy->layers(0).bits(), 0);
  EXPECT_EQ(policy->layers(1).name(), "conv1");
  EXPECT_EQ(policy->layers(1).bits(), 16);
}

TEST(ParsePolicyJsonTest, UniformForm) {
  auto policy = ParsePolicyJson(R"({"uniform": {"prune": 0.5, "bits": 8, "distill": 0}})");
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->layers_size(), 0);
  ASSERT_TRUE(policy->has_uniform());
  EXPECT_DOUBLE_EQ(policy->uniform().prune(), 0.5);
  EXPECT_EQ(policy->uniform().bits(), 8);
  EXPECT_DOUBLE_EQ(policy->uniform().distill(), 0.0);
}

TEST(ParsePolicyJsonTest, MalformedJsonIsInvalidArgument) {
  auto policy = ParsePolicyJson(R"({"layers": [{"name": "conv1", "prune": )");
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(policy.status().message(), HasSubstr("policy JSON"));
}

TEST(ParsePolicyJsonTest, UnknownFieldIsRejectedNamingIt) {
  auto policy = ParsePolicyJson(R"({"uniform": {"prun": 0.5}})");
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(policy.status().message(), HasSubstr("prun"));
}

TEST(ParsePolicyJsonTest, WrongTypeIsRejected) {
  auto policy = ParsePolicyJson(R"({"uniform": {"bits": "eight"}})");
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParsePolicyJsonTest, BothFormsAreRejected) {
  auto policy = ParsePolicyJson(
      R"({"layers": [{"name": "conv1", "prune": 0.5}], "uniform": {"prune": 0.5}})");
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(policy.status().message(), HasSubstr("not both"));
}

TEST(ParsePolicyJsonTest, NeitherFormIsRejected) {
  auto policy = ParsePolicyJson("{}");
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(policy.status().message(), HasSubstr("needs"));
}

TEST(ParsePolicyJsonTest, EmptyLayerListCountsAsNeither) {
  auto policy = ParsePolicyJson(R"({"layers": []})");
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- PolicyToJson ----

TEST(PolicyToJsonTest, PerLayerRoundTrips) {
  v1::Policy original = FullPerLayerPolicy();
  std::string json = PolicyToJson(original);
  auto parsed = ParsePolicyJson(json);
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << json;
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(original, *parsed)) << json;
}

TEST(PolicyToJsonTest, UniformRoundTrips) {
  v1::Policy original;
  *original.mutable_uniform() = Action("", 0.3, 16, 0.5);
  std::string json = PolicyToJson(original);
  auto parsed = ParsePolicyJson(json);
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << json;
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(original, *parsed)) << json;
}

TEST(PolicyToJsonTest, UsesProtoFieldNamesAndPrintsZeroFields) {
  std::string json = PolicyToJson(PerLayer({Action("conv1", 0.0, 0)}));
  EXPECT_THAT(json, HasSubstr("\"layers\""));
  EXPECT_THAT(json, HasSubstr("\"conv1\""));
  EXPECT_THAT(json, HasSubstr("\"prune\""));
  EXPECT_THAT(json, HasSubstr("\"bits\""));
  EXPECT_THAT(json, HasSubstr("\"distill\""));
}

// ---- EffectiveBits ----

TEST(EffectiveBitsTest, ZeroMeansFullPrecision) {
  EXPECT_EQ(EffectiveBits(0), 32);
  EXPECT_EQ(EffectiveBits(8), 8);
  EXPECT_EQ(EffectiveBits(16), 16);
  EXPECT_EQ(EffectiveBits(32), 32);
}

// ---- ValidateAction ----

TEST(ValidateActionTest, AcceptsTypicalAction) {
  EXPECT_TRUE(ValidateAction(Action("conv1", 0.5, 8, 0.2)).ok());
}

TEST(ValidateActionTest, AcceptsRangeEdges) {
  EXPECT_TRUE(ValidateAction(Action("conv1", 0.0, 8, 0.0)).ok());
  EXPECT_TRUE(ValidateAction(Action("conv1", kMaxPrune, 16, 1.0)).ok());
}

TEST(ValidateActionTest, AcceptsZeroAndThirtyTwoBits) {
  EXPECT_TRUE(ValidateAction(Action("conv1", 0.1, 0)).ok());
  EXPECT_TRUE(ValidateAction(Action("conv1", 0.1, 32)).ok());
}

TEST(ValidateActionTest, AcceptsEveryBitWidthFromFourToSixteen) {
  for (int bits = 4; bits <= 16; ++bits) {
    EXPECT_TRUE(ValidateAction(Action("conv1", 0.1, bits)).ok()) << bits;
  }
}

TEST(ValidateActionTest, NegativePruneIsRejectedNamingLayer) {
  auto s = ValidateAction(Action("conv2", -0.1, 8));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("conv2"));
  EXPECT_THAT(s.message(), HasSubstr("prune"));
}

TEST(ValidateActionTest, PruneAboveMaximumIsRejectedNamingLayer) {
  auto s = ValidateAction(Action("fc1", 0.95, 8));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("fc1"));
  EXPECT_THAT(s.message(), HasSubstr("0.95"));
}

TEST(ValidateActionTest, NanPruneIsRejected) {
  EXPECT_EQ(ValidateAction(Action("fc1", std::nan(""), 8)).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ValidateActionTest, ThreeBitsIsInvalidNamingLayer) {
  auto s = ValidateAction(Action("conv1", 0.0, 3));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("conv1"));
  EXPECT_THAT(s.message(), HasSubstr("bits 3"));
}

TEST(StoredWeightBytesTest, FollowsEachStorageScheme) {
  // 4..7 bits: packed codes + fp16 scale and zero per group of 128 inputs per row.
  EXPECT_EQ(StoredWeightBytes(768, 768, 4), 768 * 768 / 2 + 4 * 768 * 6);
  EXPECT_EQ(StoredWeightBytes(3, 5, 5), (15 * 5 + 7) / 8 + 4 * 3);   // one short group per row
  EXPECT_EQ(StoredWeightBytes(2, 130, 7), (260 * 7 + 7) / 8 + 4 * 2 * 2);
  EXPECT_EQ(StoredWeightBytes(10, 20, 8), 200 + 40);                // int8 + fp32 scale per row
  EXPECT_EQ(StoredWeightBytes(10, 20, 12), 400);                    // fp16
  EXPECT_EQ(StoredWeightBytes(10, 20, 0), 800);                     // unset = fp32
}

TEST(ValidateActionTest, SeventeenBitsIsInvalidNamingLayer) {
  auto s = ValidateAction(Action("fc2", 0.0, 17));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("fc2"));
  EXPECT_THAT(s.message(), HasSubstr("17"));
}

TEST(ValidateActionTest, NegativeAndOtherOddBitsAreInvalid) {
  for (int bits : {-8, 1, 24, 31, 33, 64}) {
    EXPECT_EQ(ValidateAction(Action("fc1", 0.0, bits)).code(), absl::StatusCode::kInvalidArgument) << bits;
  }
}

TEST(ValidateActionTest, DistillAboveOneIsRejectedNamingLayer) {
  auto s = ValidateAction(Action("fc1", 0.0, 8, 1.5));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("fc1"));
  EXPECT_THAT(s.message(), HasSubstr("distill"));
}

TEST(ValidateActionTest, NegativeDistillIsRejected) {
  EXPECT_EQ(ValidateAction(Action("fc1", 0.0, 8, -0.1)).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ValidateActionTest, UnnamedActionIsCalledUniform) {
  auto s = ValidateAction(Action("", 0.95, 8));
  EXPECT_THAT(s.message(), HasSubstr("uniform"));
}

// ---- ResolvePolicy ----

TEST(ResolvePolicyTest, UniformExpandsToEveryLayerInModelOrder) {
  v1::Policy policy;
  *policy.mutable_uniform() = Action("", 0.5, 8, 0.2);
  auto actions = ResolvePolicy(policy, FourLayerModel());
  ASSERT_TRUE(actions.ok()) << actions.status();
  ASSERT_EQ(actions->size(), 4u);
  const char* names[] = {"conv1", "conv2", "fc1", "fc2"};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ((*actions)[i].name(), names[i]);
    EXPECT_EQ((*actions)[i].bits(), 8);
    EXPECT_DOUBLE_EQ((*actions)[i].distill(), 0.2);
  }
}

TEST(ResolvePolicyTest, UniformZeroesPruneOnNonPrunableLayer) {
  v1::Policy policy;
  *policy.mutable_uniform() = Action("", 0.5, 8);
  auto actions = ResolvePolicy(policy, FourLayerModel());
  ASSERT_TRUE(actions.ok()) << actions.status();
  EXPECT_DOUBLE_EQ((*actions)[0].prune(), 0.5);
  EXPECT_DOUBLE_EQ((*actions)[1].prune(), 0.5);
  EXPECT_DOUBLE_EQ((*actions)[2].prune(), 0.5);
  EXPECT_DOUBLE_EQ((*actions)[3].prune(), 0.0);
  EXPECT_EQ((*actions)[3].bits(), 8);
}

TEST(ResolvePolicyTest, InvalidUniformIsRejected) {
  v1::Policy policy;
  *policy.mutable_uniform() = Action("", 0.95, 8);
  auto actions = ResolvePolicy(policy, FourLayerModel());
  ASSERT_FALSE(actions.ok());
  EXPECT_EQ(actions.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ResolvePolicyTest, PerLayerIsReturnedInModelOrder) {
  v1::Policy policy = PerLayer({Action("fc2", 0.0, 8), Action("fc1", 0.75, 32), Action("conv2", 0.5, 16),
                                Action("conv1", 0.25, 8)});
  auto actions = ResolvePolicy(policy, FourLayerModel());
  ASSERT_TRUE(actions.ok()) << actions.status();
  ASSERT_EQ(actions->size(), 4u);
  EXPECT_EQ((*actions)[0].name(), "conv1");
  EXPECT_DOUBLE_EQ((*actions)[0].prune(), 0.25);
  EXPECT_EQ((*actions)[1].name(), "conv2");
  EXPECT_EQ((*actions)[1].bits(), 16);
  EXPECT_EQ((*actions)[2].name(), "fc1");
  EXPECT_DOUBLE_EQ((*actions)[2].prune(), 0.75);
  EXPECT_EQ((*actions)[3].name(), "fc2");
}

TEST(ResolvePolicyTest, PerLayerMissingLayerIsRejectedNamingIt) {
  v1::Policy policy = PerLayer({Action("conv1", 0.25, 8), Action("fc1", 0.75, 32), Action("fc2", 0.0, 8)});
  auto actions = ResolvePolicy(policy, FourLayerModel());
  ASSERT_FALSE(actions.ok());
  EXPECT_EQ(actions.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(actions.status().message(), HasSubstr("conv2"));
}

TEST(ResolvePolicyTest, PerLayerUnknownLayerIsRejectedNamingIt) {
  v1::Policy policy = FullPerLayerPolicy();
  *policy.add_layers() = Action("conv9", 0.1, 8);
  auto actions = ResolvePolicy(policy, FourLayerModel());
  ASSERT_FALSE(actions.ok());
  EXPECT_EQ(actions.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(actions.status().message(), HasSubstr("conv9"));
}

TEST(ResolvePolicyTest, PerLayerDuplicateLayerIsRejectedNamingIt) {
  v1::Policy policy = FullPerLayerPolicy();
  *policy.add_layers() = Action("conv2", 0.1, 8);
  auto actions = ResolvePolicy(policy, FourLayerModel());
  ASSERT_FALSE(actions.ok());
  EXPECT_EQ(actions.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(actions.status().message(), HasSubstr("conv2"));
  EXPECT_THAT(actions.status().message(), HasSubstr("twice"));
}

TEST(ResolvePolicyTest, PerLayerPruningNonPrunableLayerIsRejectedNamingIt) {
  v1::Policy policy = PerLayer({Action("conv1", 0.25, 8), Action("conv2", 0.5, 16), Action("fc1", 0.75, 32),
                                Action("fc2", 0.1, 8)});
  auto actions = ResolvePolicy(policy, FourLayerModel());
  ASSERT_FALSE(actions.ok());
  EXPECT_EQ(actions.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(actions.status().message(), HasSubstr("fc2"));
  EXPECT_THAT(actions.status().message(), HasSubstr("cannot be pruned"));
}

TEST(ResolvePolicyTest, PerLayerInvalidActionIsRejectedNamingLayer) {
  v1::Policy policy = PerLayer({Action("conv1", 0.25, 8), Action("conv2", 0.5, 3), Action("fc1", 0.75, 32),
                                Action("fc2", 0.0, 8)});
  auto actions = ResolvePolicy(policy, FourLayerModel());
  ASSERT_FALSE(actions.ok());
  EXPECT_EQ(actions.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(actions.status().message(), HasSubstr("conv2"));
}

// ---- PolicySummary ----

TEST(PolicySummaryTest, PerLayerAndUniformForms) {
  EXPECT_EQ(PolicySummary(PerLayer({Action("conv1", 0.25, 8), Action("fc2", 0.0, 0)})),
            "conv1 p0.25/8b fc2 p0.00/32b");
  v1::Policy uniform;
  *uniform.mutable_uniform() = Action("", 0.5, 16);
  EXPECT_EQ(PolicySummary(uniform), "uniform p0.50/16b");
}

}  // namespace
}  // namespace shrink
