// 4..7-bit group-wise weights end to end: policies with bits 4..7 on the
// transformers (linears and embeddings) and the CNN store packed codes with fp16
// scales / zero points, reload to identical outputs, obey the byte arithmetic
// of common/policy.h, and calibrate with GPTQ when data is given.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/files.h"
#include "common/policy.h"
#include "tests/worker/transformer_test_util.h"
#include "worker/compress/cnn_compress.h"
#include "worker/data/fashion_mnist.h"
#include "worker/checkpoint/packed_weight.h"
#include "worker/checkpoint/safetensors.h"
#include "worker/compress/transformer_compress.h"
#include "worker/nn/transformer_build.h"
#include "worker/model/cnn_backend.h"

namespace shrink::worker {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::TinyBatch;
using testing::TinyTransformer;
using testing::TransformerLogits;

// Bytes of all tensors' data in a model folder's model.safetensors.
int64_t TensorBytes(const std::string& dir) {
  auto file = SafetensorsFile::Open(dir + "/" + kModelWeightsFile);
  EXPECT_TRUE(file.ok()) << file.status();
  int64_t total = 0;
  if (file.ok()) {
    for (const auto& [name, view] : (*file)->tensors()) total += view.size;
  }
  return total;
}

shrink::v1::Policy TransformerPolicy(const TransformerConfig& c, int embedding_bits, int attention_bits,
                                     int ffn_bits, int head_bits) {
  shrink::v1::Policy policy;
  for (const auto& group : TransformerLayerGroups(c)) {
    auto* a = policy.add_layers();
    a->set_name(group.name);
    a->set_bits(group.kind == "embedding" ? embedding_bits
                : group.kind == "attention" ? attention_bits
                : group.kind == "ffn"       ? ffn_bits
                                            : head_bits);
  }
  return policy;
}

// The tensor bytes a policy predicts: the fp32 file with every layer's weights re-priced
// by StoredWeightBytes at the layer's bits (biases and LayerNorms stay fp32).
int64_t PredictedTensorBytes(const TransformerWeights& fp32, int64_t fp32_bytes, const shrink::v1::Policy& policy) {
  std::map<std::string, int> bits;
  for (const auto& a : policy.layers()) bits[a.name()] = a.bits();
  int64_t total = fp32_bytes;
  for (const auto& group : TransformerLayerGroups(fp32.config)) {
    for (const auto& module : group.modules) {
      const torch::Tensor& w = fp32.tensors.at(module + ".weight");
      total += StoredWeightBytes(w.size(0), w.size(1), bits.at(group.name)) - 4 * w.numel();
    }
  }
  return total;
}

TEST(LowBitTest, TransformerPackedLayersReloadIdenticallyAndMatchTheByteArithmetic) {
  const TransformerFamily families[] = {TransformerFamily::kBert, TransformerFamily::kDistilBert,
                                        TransformerFamily::kRoberta, TransformerFamily::kGpt2};
  for (TransformerFamily family : families) {
    SCOPED_TRACE(FamilyName(family));
    TempDir dir;
    auto model = TinyTransformer(family, dir.Sub("fp32"));
    ASSERT_NE(model, nullptr);
    const TransformerWeights& fp32 = model->impl->transformer()->weights;
    const auto policy = TransformerPolicy(fp32.config, 5, 4, 7, 6);
    auto packed = model->Apply(policy);
    ASSERT_TRUE(packed.ok()) << packed.status();
    ASSERT_TRUE((*packed)->Save(dir.Sub("q")).ok());
    auto reloaded = Model::Load(dir.Sub("q"));
    ASSERT_TRUE(reloaded.ok()) << reloaded.status();

    auto [ids, mask] = TinyBatch();
    torch::Tensor reference = TransformerLogits(*model, ids, mask);
    torch::Tensor q = TransformerLogits(**packed, ids, mask);
    EXPECT_TRUE(torch::equal(q, TransformerLogits(**reloaded, ids, mask)));
    EXPECT_LT((q - reference).abs().max().item<double>(), 0.25 * reference.abs().max().item<double>() + 0.1);

    // Stored as packed codes under HF's names, described in config.json.
    auto file = SafetensorsFile::Open(dir.Sub("q") + "/" + kModelWeightsFile);
    ASSERT_TRUE(file.ok());
    const std::string fc1 = family == TransformerFamily::kGpt2         ? "transformer.h.0.mlp.c_fc"
                            : family == TransformerFamily::kDistilBert ? "distilbert.transformer.layer.0.ffn.lin1"
                            : family == TransformerFamily::kRoberta    ? "roberta.encoder.layer.0.intermediate.dense"
                                                                       : "bert.encoder.layer.0.intermediate.dense";
    const SafetensorsTensorView* codes = (*file)->Find(fc1 + ".weight_packed");
    ASSERT_NE(codes, nullptr);
    EXPECT_EQ(codes->dtype, SafetensorsDtype::kU8);
    EXPECT_EQ(codes->size, PackedCodeBytes(64 * 32, 7));
    ASSERT_NE((*file)->Find(fc1 + ".weight_scales"), nullptr);
    EXPECT_EQ((*file)->Find(fc1 + ".weight_scales")->dtype, SafetensorsDtype::kF16);
    EXPECT_EQ((*file)->Find(fc1 + ".weight"), nullptr);
    auto config = nlohmann::json::parse(*ReadFile(dir.Sub("q") + "/config.json"));
    const std::string ffn = BlockPrefix(fp32.config) + "0.ffn";
    EXPECT_EQ(config["shrink_quantization"][ffn]["bits"], 7);
    EXPECT_EQ(config["shrink_quantization"][ffn]["scheme"], "groupwise");
    EXPECT_EQ(config["shrink_quantization"][ffn]["group_size"], kQuantGroupSize);
    EXPECT_EQ(config["shrink_quantization"][ffn]["method"], "rtn");  // no calibration data given
    EXPECT_EQ(config["shrink_quantization"]["embeddings"]["bits"], 5);

    // Bytes on disk follow the policy's arithmetic exactly.
    EXPECT_EQ(TensorBytes(dir.Sub("q")), PredictedTensorBytes(fp32, TensorBytes(dir.Sub("fp32")), policy));
    EXPECT_EQ((*packed)->Describe().bytes(), *DirectoryBytes(dir.Sub("q")));
    EXPECT_LT((*packed)->Describe().bytes(), 0.4 * model->Describe().bytes());
    EXPECT_FALSE((*reloaded)->Apply(policy).ok());  // compressed models are not compressed again
  }
}

TEST(LowBitTest, Gpt2TiedHeadUsesTheQuantizedEmbeddingTable) {
  TempDir dir;
  auto model = TinyTransformer(TransformerFamily::kGpt2, dir.path());
  ASSERT_NE(model, nullptr);
  auto packed = model->Apply(TransformerPolicy(model->impl->transformer()->weights.config, 4, 32, 32, 32));
  ASSERT_TRUE(packed.ok()) << packed.status();
  Transformer net = (*packed)->impl->transformer()->net;
  auto [ids, mask] = TinyBatch();
  torch::NoGradGuard no_grad;
  torch::Tensor hidden = net->Encode(ids, mask);
  // The head computes with the same (dequantized 4-bit) rows the lookups use.
  torch::Tensor expected = torch::nn::functional::linear(hidden, net->word->weight);
  torch::Tensor logits = net->LmLogits(hidden);
  EXPECT_LT((logits - expected).abs().max().item<double>(), 0.02 * expected.abs().max().item<double>() + 1e-3);
  // The table really is on the 4-bit grid: at most 16 distinct values per row group.
  torch::Tensor row = net->word->weight[3];
  EXPECT_LE(std::get<0>(at::_unique(row)).numel(), 16);
}

TEST(LowBitTest, GptqOnCalibrationBatchesBeatsRoundToNearest) {
  TempDir dir;
  auto model = TinyTransformer(TransformerFamily::kBert, dir.path());
  ASSERT_NE(model, nullptr);
  const TransformerWeights& fp32 = model->impl->transformer()->weights;
  std::vector<shrink::v1::LayerAction> actions;
  for (const auto& group : TransformerLayerGroups(fp32.config)) {
    shrink::v1::LayerAction a;
    a.set_name(group.name);
    a.set_bits(group.kind == "attention" || group.kind == "ffn" ? 4 : 32);
    actions.push_back(a);
  }
  torch::manual_seed(21);
  std::vector<CalibrationBatch> calibration;
  for (int i = 0; i < 4; ++i) {
    torch::Tensor ids = torch::randint(2, 60, {8, 20}, torch::kInt64);
    torch::Tensor mask = torch::ones_like(ids);
    mask.narrow(1, 15, 5).narrow(0, 0, 4).zero_();  // some padding, which calibration skips
    calibration.push_back({ids, mask});
  }
  auto inputs = RecordDenseInputs(fp32, calibration, {"blocks.0.ffn.fc2", "blocks.1.attention.q"}, 10000);
  ASSERT_TRUE(inputs.ok()) << inputs.status();
  EXPECT_EQ(inputs->at("blocks.0.ffn.fc2").sizes(), (std::vector<int64_t>{4 * 8 * 20 - 4 * 4 * 5, 64}));
  EXPECT_EQ(inputs->at("blocks.1.attention.q").size(1), 32);

  auto gptq = CompressTransformer(fp32, actions, calibration);
  auto rtn = CompressTransformer(fp32, actions);
  ASSERT_TRUE(gptq.ok()) << gptq.status();
  ASSERT_TRUE(rtn.ok()) << rtn.status();
  EXPECT_EQ(gptq->config.storage.at(BlockPrefix(fp32.config) + "0.ffn").method, "gptq");
  EXPECT_EQ(rtn->config.storage.at(BlockPrefix(fp32.config) + "0.ffn").method, "rtn");
  // Held-out token batches: final hidden states closer to fp32 with GPTQ.
  auto reference = BuildTransformer(fp32);
  auto a = BuildTransformer(*gptq);
  auto b = BuildTransformer(*rtn);
  ASSERT_TRUE(reference.ok() && a.ok() && b.ok());
  torch::manual_seed(77);
  torch::Tensor ids = torch::randint(2, 60, {16, 20}, torch::kInt64), mask = torch::ones_like(ids);
  torch::NoGradGuard no_grad;
  torch::Tensor h = (*reference)->Encode(ids, mask);
  const double gptq_error = ((*a)->Encode(ids, mask) - h).pow(2).mean().item<double>();
  const double rtn_error = ((*b)->Encode(ids, mask) - h).pow(2).mean().item<double>();
  EXPECT_LT(gptq_error, rtn_error);
}

TEST(LowBitTest, CnnPackedLayersCalibrateReloadAndMatchTheByteArithmetic) {
  TempDir dir;
  auto model = testing::RandomCnn(dir.Sub("fp32"), 13);
  ASSERT_NE(model, nullptr);
  shrink::v1::Policy policy;
  const std::vector<std::pair<std::string, int>> bits = {{"conv1", 6}, {"conv2", 4}, {"fc1", 4}, {"fc2", 5}};
  for (const auto& [name, b] : bits) {
    auto* a = policy.add_layers();
    a->set_name(name);
    a->set_bits(b);
  }
  TaskData data;
  data.name = "fashion-mnist";
  data.images = std::shared_ptr<const ImageDataset>(&testing::FashionMnist(), [](const ImageDataset*) {});
  auto gptq = model->Apply(policy, ApplyOptions{data});
  auto rtn = model->Apply(policy);
  ASSERT_TRUE(gptq.ok()) << gptq.status();
  ASSERT_TRUE(rtn.ok()) << rtn.status();
  EXPECT_EQ((*gptq)->impl->cnn()->checkpoint.storage.at("fc1").method, "gptq");
  EXPECT_EQ((*rtn)->impl->cnn()->checkpoint.storage.at("fc1").method, "rtn");

  ASSERT_TRUE((*gptq)->Save(dir.Sub("q")).ok());
  auto reloaded = Model::Load(dir.Sub("q"));
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  auto split = FindSplit(testing::FashionMnist(), "validation");
  ASSERT_TRUE(split.ok());
  torch::Tensor images = (*split)->images.narrow(0, 0, 256);
  torch::Tensor reference = testing::Logits(*model, images);
  torch::Tensor calibrated = testing::Logits(**gptq, images);
  EXPECT_TRUE(torch::equal(calibrated, testing::Logits(**reloaded, images)));
  EXPECT_LT((calibrated - reference).pow(2).mean().item<double>(),
            (testing::Logits(**rtn, images) - reference).pow(2).mean().item<double>());

  // Bytes: the fp32 file with each weight re-priced at its bits.
  const CnnCheckpoint& original = model->impl->cnn()->checkpoint;
  int64_t predicted = TensorBytes(dir.Sub("fp32"));
  for (const auto& [name, b] : bits) {
    const torch::Tensor& w = original.tensors.at(name + ".weight");
    predicted += StoredWeightBytes(w.size(0), w.numel() / w.size(0), b) - 4 * w.numel();
  }
  EXPECT_EQ(TensorBytes(dir.Sub("q")), predicted);
  auto config = nlohmann::json::parse(*ReadFile(dir.Sub("q") + "/config.json"));
  EXPECT_EQ(config["quantization"]["conv2"]["scheme"], "groupwise");
  EXPECT_EQ(config["quantization"]["conv2"]["group_size"], kQuantGroupSize);
}

TEST(LowBitTest, CorruptPackedTensorsAreRejectedNamingTheTensor) {
  TempDir dir;
  auto model = TinyTransformer(TransformerFamily::kBert, dir.Sub("fp32"));
  ASSERT_NE(model, nullptr);
  auto packed = model->Apply(TransformerPolicy(model->impl->transformer()->weights.config, 32, 4, 32, 32));
  ASSERT_TRUE(packed.ok()) << packed.status();
  TransformerWeights weights = (*packed)->impl->transformer()->weights;
  // A truncated code stream.
  TransformerWeights truncated = weights;
  truncated.tensors["blocks.1.attention.k.weight_packed"] =
      truncated.tensors["blocks.1.attention.k.weight_packed"].narrow(0, 0, 10).clone();
  ASSERT_TRUE(WriteTransformerCheckpoint(truncated, dir.Sub("bad1")).ok());
  auto bad1 = Model::Load(dir.Sub("bad1"));
  ASSERT_FALSE(bad1.ok());
  EXPECT_THAT(bad1.status().message(), HasSubstr("blocks.1.attention.k.weight_packed"));
  // A zero scale.
  TransformerWeights zero = weights;
  zero.tensors["blocks.0.attention.o.weight_scales"] =
      torch::zeros_like(zero.tensors.at("blocks.0.attention.o.weight_scales"));
  ASSERT_TRUE(WriteTransformerCheckpoint(zero, dir.Sub("bad2")).ok());
  auto bad2 = Model::Load(dir.Sub("bad2"));
  ASSERT_FALSE(bad2.ok());
  EXPECT_THAT(bad2.status().message(), HasSubstr("scales"));
}

}  // namespace
}  // namespace shrink::worker
