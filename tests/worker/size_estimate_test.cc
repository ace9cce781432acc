// The agent plans every candidate with agent/budget.h's size estimate and clamps it to the
// job's target. These tests compress real (tiny) models with mixed policies and check that
// the files the worker saves never exceed that estimate, so a candidate planned at the
// target is feasible when measured.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agent/budget.h"
#include "common/files.h"
#include "common/policy.h"
#include "tests/worker/model_test_util.h"
#include "tests/worker/transformer_test_util.h"

namespace shrink::worker {
namespace {

using testing::TempDir;

// Deterministic mixed policies over a described model: every layer gets a different
// mix of bits (packed 4/5, int8, fp16, fp32) and prune ratios (up to removing blocks).
std::vector<v1::Policy> MixedPolicies(const v1::ModelDescription& model) {
  const int bits[] = {4, 8, 16, 32, 5, 8, 4};
  const double prunes[] = {0.0, 0.3, 0.5, 0.9, 0.75, 0.9};
  std::vector<v1::Policy> policies;
  for (int k = 0; k < 6; ++k) {
    v1::Policy policy;
    for (int i = 0; i < model.layers_size(); ++i) {
      v1::LayerAction* a = policy.add_layers();
      a->set_name(model.layers(i).name());
      a->set_bits(bits[(i + k) % 7]);
      a->set_prune(model.layers(i).prunable() ? prunes[(2 * i + k) % 6] : 0.0);
    }
    policies.push_back(policy);
  }
  return policies;
}

void ExpectEstimateBoundsTheSavedFiles(const Model& original, const TempDir& dir) {
  const v1::ModelDescription model = original.Describe();
  ASSERT_GT(model.bytes(), 0);
  int k = 0;
  for (const v1::Policy& policy : MixedPolicies(model)) {
    auto actions = ResolvePolicy(policy, model);
    ASSERT_TRUE(actions.ok()) << actions.status();
    auto compressed = original.Apply(policy);
    ASSERT_TRUE(compressed.ok()) << PolicySummary(policy) << ": " << compressed.status();
    const std::string out = dir.Sub("candidate-" + std::to_string(k++));
    ASSERT_TRUE((*compressed)->Save(out).ok());
    auto bytes = DirectoryBytes(out);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    const double estimated = agent::EstimateSizeRatio(model, *actions) * static_cast<double>(model.bytes());
    EXPECT_LE(static_cast<double>(*bytes), estimated) << PolicySummary(policy);
    // An upper bound, not a loose one: the files' growth is all the estimate adds on top of
    // the weights, and int8 scales are priced per row where the linears keep one.
    EXPECT_GE(static_cast<double>(*bytes), estimated - agent::EstimateMetadataGrowth(model, *actions) -
                                               0.05 * static_cast<double>(model.bytes()))
        << PolicySummary(policy);
  }
}

TEST(SizeEstimateTest, BoundsTheSavedBertFiles) {
  TempDir dir;
  auto model = testing::TinyTransformer(TransformerFamily::kBert, dir.Sub("fp32"));
  ASSERT_NE(model, nullptr);
  ExpectEstimateBoundsTheSavedFiles(*model, dir);
}

TEST(SizeEstimateTest, BoundsTheSavedGpt2Files) {
  TempDir dir;
  auto model = testing::TinyTransformer(TransformerFamily::kGpt2, dir.Sub("fp32"));
  ASSERT_NE(model, nullptr);
  ExpectEstimateBoundsTheSavedFiles(*model, dir);
}

TEST(SizeEstimateTest, BoundsTheSavedCnnFiles) {
  TempDir dir;
  auto model = testing::RandomCnn(dir.Sub("fp32"));
  ASSERT_NE(model, nullptr);
  ExpectEstimateBoundsTheSavedFiles(*model, dir);
}

}  // namespace
}  // namespace shrink::worker
