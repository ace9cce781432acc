// ONNX export checked on a real ONNX Runtime (onnxruntime-node, in the warm runner process):
// every family, uncompressed and under each storage scheme Shrink produces, gives the logits
// Shrink computes on the same inputs.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "tests/worker/model_test_util.h"
#include "tests/worker/transformer_test_util.h"
#include "worker/export/export_model.h"
#include "worker/export/onnx_weights.h"
#include "worker/runtime/onnxruntime_process.h"
#include "worker/model/cnn_backend.h"

namespace shrink::worker {
namespace {

using testing::TempDir;

// One runner for the whole test binary (starting node takes ~0.2 s).
OnnxRuntimeProcess& Runtime() {
  static std::unique_ptr<OnnxRuntimeProcess> process = [] {
    auto started = OnnxRuntimeProcess::Start();
    EXPECT_TRUE(started.ok()) << started.status();
    return started.ok() ? std::move(*started) : nullptr;
  }();
  return *process;
}

torch::Tensor ToTorch(const RuntimeTensor& t) {
  std::vector<float> values = t.Floats();
  return torch::from_blob(values.data(), t.dims, torch::kFloat32).clone();
}

RuntimeTensor FromTorch(const torch::Tensor& t) {
  torch::Tensor c = t.contiguous();
  if (c.scalar_type() == torch::kInt64) {
    return RuntimeTensor::Int64(c.sizes().vec(), std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()));
  }
  c = c.to(torch::kFloat32);
  return RuntimeTensor::Float32(c.sizes().vec(), std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel()));
}

// Exports `model` and runs the export in ONNX Runtime on `inputs`: the "logits" output.
torch::Tensor RunExported(const Model& model, const std::map<std::string, torch::Tensor>& inputs,
                          const ExportOptions& options = {}) {
  TempDir dir;
  auto written = WriteOnnxExport(model, dir.path(), options);
  EXPECT_TRUE(written.ok()) << written.status();
  if (!written.ok()) return torch::Tensor();
  auto session = Runtime().Load(dir.Sub(kOnnxFile), 1);
  EXPECT_TRUE(session.ok()) << session.status();
  if (!session.ok()) return torch::Tensor();
  std::map<std::string, RuntimeTensor> feeds;
  for (const auto& [name, t] : inputs) feeds[name] = FromTorch(t);
  if (const TransformerBackend* t = model.impl->transformer(); t != nullptr && t->weights.config.is_decoder()) {
    // No cache yet: every layer's past keys and values are empty.
    const TransformerConfig& c = t->weights.config;
    for (int64_t i = 0; i < c.num_layers; ++i) {
      for (const char* part : {"key", "value"}) {
        feeds[absl::StrCat("past_key_values.", i, ".", part)] =
            RuntimeTensor{"float32", {inputs.at("input_ids").size(0), c.layers[i].heads, 0, c.head_dim()}, ""};
      }
    }
  }
  auto run = Runtime().Run(session->id, feeds);
  EXPECT_TRUE(run.ok()) << run.status();
  EXPECT_TRUE(Runtime().Unload(session->id).ok());
  if (!run.ok() || run->outputs.count("logits") == 0) return torch::Tensor();
  return ToTorch(run->outputs.at("logits"));
}

// max |a - b| relative to the largest |reference| logit.
double RelativeMaxError(const torch::Tensor& a, const torch::Tensor& reference) {
  return (a - reference).abs().max().item<double>() / reference.abs().max().item<double>();
}

double Cosine(const torch::Tensor& a, const torch::Tensor& b) {
  return torch::nn::functional::cosine_similarity(a.flatten().unsqueeze(0), b.flatten().unsqueeze(0)).item<double>();
}

// Fraction of rows (last dim = classes) whose argmax agrees.
double TopOneAgreement(const torch::Tensor& a, const torch::Tensor& b) {
  return a.argmax(-1).eq(b.argmax(-1)).to(torch::kFloat32).mean().item<double>();
}

// The model with every weight widened to the fp32 it stands for: what a 4..7-bit or int8
// model means exactly (Shrink's own runtime requantizes those layers to int8 kernels).
std::unique_ptr<Model> WidenedTwin(const Model& model) {
  if (const CnnBackend* cnn = model.impl->cnn()) {
    CnnCheckpoint fp32;
    fp32.widths = cnn->checkpoint.widths;
    for (const auto& layer : CnnLayerNames()) {
      fp32.tensors[layer + ".weight"] = Float32Weight(cnn->checkpoint, layer).contiguous();
      fp32.tensors[layer + ".bias"] = cnn->checkpoint.tensors.at(layer + ".bias");
      fp32.storage[layer] = LayerStorage();
    }
    auto backend = MakeCnnBackend(std::move(fp32));
    EXPECT_TRUE(backend.ok()) << backend.status();
    return backend.ok() ? WrapBackend(std::move(*backend)) : nullptr;
  }
  const TransformerWeights& stored = model.impl->transformer()->weights;
  TransformerWeights fp32;
  fp32.config = stored.config;
  fp32.config.storage.clear();
  for (const auto& [name, t] : stored.tensors) {
    const auto suffix = name.substr(name.rfind('.') + 1);
    const std::string module = name.substr(0, name.rfind('.'));
    if (suffix == "weight_scale" || suffix == "weight_scales" || suffix == "weight_zeros") continue;
    if (suffix == "weight" || suffix == "weight_packed") {
      fp32.tensors[module + ".weight"] = Float32ModuleWeight(stored, module).contiguous();
    } else {
      fp32.tensors[name] = t.to(torch::kFloat32);
    }
  }
  TempDir dir;
  EXPECT_TRUE(WriteTransformerCheckpoint(fp32, dir.path()).ok());
  auto loaded = Model::Load(dir.path());
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return loaded.ok() ? std::move(*loaded) : nullptr;
}

shrink::v1::Policy Uniform(double prune, int bits) {
  shrink::v1::Policy policy;
  policy.mutable_uniform()->set_prune(prune);
  policy.mutable_uniform()->set_bits(bits);
  return policy;
}

// Per-layer: the first block removed (attention and FFN both at 0.9), the rest mixed.
shrink::v1::Policy MixedTransformerPolicy(const TransformerConfig& c) {
  shrink::v1::Policy policy;
  int i = 0;
  for (const auto& group : TransformerLayerGroups(c)) {
    auto* a = policy.add_layers();
    a->set_name(group.name);
    if (group.block == 0) {
      a->set_prune(0.9);
      a->set_bits(32);
    } else {
      const int bits[] = {8, 4, 16, 32, 6};
      a->set_bits(group.kind == "embedding" ? 8 : bits[i++ % 5]);
      a->set_prune(group.kind == "attention" ? 0.5 : group.kind == "ffn" ? 0.25 : 0);
    }
  }
  return policy;
}

struct Case {
  std::string name;
  shrink::v1::Policy policy;
  bool int8_compute;  // Shrink's runtime computes some layer with int8 kernels
  bool mixed = false;
};

std::vector<Case> Cases() {
  return {{"fp32", shrink::v1::Policy(), false},
          {"prune 0.5", Uniform(0.5, 32), false},
          {"int8", Uniform(0, 8), true},
          {"prune 0.25 + int8", Uniform(0.25, 8), true},
          {"4-bit", Uniform(0, 4), true},
          {"4-bit on int8 kernels", Uniform(0, 4), true},
          {"fp16", Uniform(0, 16), false},
          {"mixed, a block removed", shrink::v1::Policy(), true, true}};
}

// "4-bit" is exported as MatMulNBits with fp32 activations, exact, and checked to 1e-4 against
// the widened twin; "mixed" (4-, 6- and 8-bit layers) as MatMulNBits with its defaults; the other
// cases as users get them (4..7-bit layers on Shrink's int8 kernels).
ExportOptions ExportOptionsFor(const Case& c) {
  ExportOptions options;
  if (c.name == "4-bit" || c.mixed) options.low_bit_kernel = LowBitKernel::kMatMulNBits;
  if (c.name == "4-bit") options.nbits_accuracy_level = 0;
  return options;
}

// Applies the case's policy into `*out` (left null for the uncompressed case); false on error.
bool ApplyCase(const Model& fp32, const Case& c, std::unique_ptr<Model>* out) {
  if (c.policy.layers_size() == 0 && !c.policy.has_uniform()) return true;
  auto applied = fp32.Apply(c.policy);
  EXPECT_TRUE(applied.ok()) << c.name << ": " << applied.status();
  if (!applied.ok()) return false;
  *out = std::move(*applied);
  return true;
}

// Checks ONNX Runtime's logits against Shrink's: exact schemes to 1e-4 of the largest logit;
// int8 by cosine (>= 0.999) and top-1 agreement (>= 99%) against Shrink's int8 kernels; 4-bit to
// 1e-4 against the widened twin, since only Shrink's side computes those layers in int8.
void ExpectSameLogits(const Case& c, const torch::Tensor& shrink_logits,
                      const torch::Tensor& onnx_logits, const torch::Tensor& twin_logits) {
  ASSERT_TRUE(onnx_logits.defined()) << c.name;
  ASSERT_EQ(onnx_logits.sizes(), shrink_logits.sizes()) << c.name;
  if (!c.int8_compute) {
    EXPECT_LE(RelativeMaxError(onnx_logits, shrink_logits), 1e-4) << c.name;
    return;
  }
  EXPECT_GE(Cosine(onnx_logits, shrink_logits), 0.999) << c.name;
  if (c.name == "4-bit") {
    // ONNX Runtime computes with the 4-bit weights exactly; Shrink's runtime requantizes them to
    // int8 kernels, so the exact reference is the widened twin (Shrink's own top-1 is ~98% of it).
    EXPECT_LE(RelativeMaxError(onnx_logits, twin_logits), 1e-4) << c.name;
    return;
  }
  EXPECT_GE(TopOneAgreement(onnx_logits, shrink_logits), 0.99) << c.name;
}

TEST(OnnxExportTest, CnnEverySchemeMatchesShrink) {
  TempDir dir;
  auto fp32 = testing::RandomCnn(dir.Sub("fp32"), 11);
  ASSERT_NE(fp32, nullptr);
  const torch::Tensor images = testing::RandomImages(256);  // top-1 agreement to 0.4%
  for (Case c : Cases()) {
    if (c.mixed) {
      const std::vector<std::tuple<std::string, double, int>> layers = {
          {"conv1", 0.25, 16}, {"conv2", 0.5, 8}, {"fc1", 0.5, 4}, {"fc2", 0, 6}};
      for (const auto& [name, prune, bits] : layers) {
        auto* a = c.policy.add_layers();
        a->set_name(name);
        a->set_prune(prune);
        a->set_bits(bits);
      }
    }
    std::unique_ptr<Model> compressed;
    ASSERT_TRUE(ApplyCase(*fp32, c, &compressed)) << c.name;
    const Model& m = compressed ? *compressed : *fp32;
    const torch::Tensor expected = testing::Logits(m, images);
    const torch::Tensor onnx = RunExported(m, {{"images", images}}, ExportOptionsFor(c));
    auto twin = WidenedTwin(m);
    ASSERT_NE(twin, nullptr);
    ExpectSameLogits(c, expected, onnx, testing::Logits(*twin, images));
  }
}

class TransformerExportTest : public ::testing::TestWithParam<TransformerFamily> {};

TEST_P(TransformerExportTest, EverySchemeMatchesShrink) {
  TempDir dir;
  auto fp32 = testing::TinyTransformer(GetParam(), dir.Sub("fp32"), 21);
  ASSERT_NE(fp32, nullptr);
  // 32 sequences of 16 tokens (424 unpadded rows of logits for GPT-2: top-1 agreement is
  // measured to 0.25%), the last eight padded after 5 tokens.
  torch::manual_seed(4);
  torch::Tensor ids = torch::randint(2, 60, {32, 16}, torch::kInt64);
  torch::Tensor mask = torch::ones_like(ids);
  const int64_t pad = fp32->impl->transformer()->PadId();
  mask.narrow(0, 24, 8).narrow(1, 5, 11).zero_();
  ids.narrow(0, 24, 8).narrow(1, 5, 11).fill_(pad);
  for (Case c : Cases()) {
    if (c.mixed) c.policy = MixedTransformerPolicy(fp32->impl->transformer()->weights.config);
    std::unique_ptr<Model> compressed;
    ASSERT_TRUE(ApplyCase(*fp32, c, &compressed)) << c.name;
    const Model& m = compressed ? *compressed : *fp32;
    if (c.mixed) EXPECT_EQ(m.impl->transformer()->weights.config.num_layers, 1) << "the mixed policy removes block 0";
    const torch::Tensor expected = testing::TransformerLogits(m, ids, mask);
    const torch::Tensor onnx = RunExported(m, {{"input_ids", ids}, {"attention_mask", mask}}, ExportOptionsFor(c));
    auto twin = WidenedTwin(m);
    ASSERT_NE(twin, nullptr);
    torch::Tensor twin_logits = testing::TransformerLogits(*twin, ids, mask);
    if (expected.dim() == 3 && onnx.defined() && onnx.sizes() == expected.sizes()) {
      // A language model's predictions are the unpadded positions' (424 rows); padded ones are
      // computed by both runtimes but predict nothing.
      const torch::Tensor real = mask.to(torch::kBool);
      ExpectSameLogits(c, expected.index({real}), onnx.index({real}), twin_logits.index({real}));
    } else {
      ExpectSameLogits(c, expected, onnx, twin_logits);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Families, TransformerExportTest,
                         ::testing::Values(TransformerFamily::kBert, TransformerFamily::kDistilBert,
                                           TransformerFamily::kRoberta, TransformerFamily::kGpt2),
                         [](const auto& info) { return FamilyName(info.param); });

TEST(OnnxExportTest, ExportFolderHasTheModelTokenizerAndManifest) {
  TempDir dir;
  auto fp32 = testing::TinyTransformer(TransformerFamily::kBert, dir.Sub("fp32"), 3);
  ASSERT_NE(fp32, nullptr);
  auto model = fp32->Apply(Uniform(0, 8));
  ASSERT_TRUE(model.ok()) << model.status();
  const std::string out = dir.Sub("export");
  auto result = ExportModel(**model, out);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(PathExists(out + "/" + kOnnxFile));
  EXPECT_FALSE(PathExists(out + "/" + kOnnxDataFile));
  auto manifest = nlohmann::json::parse(*ReadFile(out + "/" + kExportManifestFile));
  EXPECT_EQ(manifest["model_type"], "bert");
  EXPECT_EQ(manifest["inputs"][0]["name"], "input_ids");
  EXPECT_EQ(manifest["outputs"][0]["shape"][1], 3);
  EXPECT_EQ(manifest["opsets"]["com.microsoft"], 1);
  bool saw_int8 = false;
  for (const auto& layer : manifest["layers"]) {
    if (layer["name"] == "encoder.layer.0.ffn") {
      EXPECT_EQ(layer["scheme"], "int8_dynamic_per_channel");
      EXPECT_EQ(layer["ops"]["com.microsoft.DynamicQuantizeMatMul"], 2);
      saw_int8 = true;
    }
  }
  EXPECT_TRUE(saw_int8) << manifest.dump(2);
  // A second export into the same (now full) folder is refused, and nothing is left behind.
  auto again = ExportModel(**model, out);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(again.status().message().find(out), std::string::npos) << again.status();
}

TEST(OnnxExportTest, LargeModelsUseExternalData) {
  TempDir dir;
  auto model = testing::TinyTransformer(TransformerFamily::kGpt2, dir.Sub("fp32"), 3);
  ASSERT_NE(model, nullptr);
  ExportOptions options;
  options.external_data_threshold = 1024;  // as if the model were over 2 GiB
  auto [ids, mask] = testing::TinyBatch();
  const torch::Tensor onnx = RunExported(*model, {{"input_ids", ids}, {"attention_mask", mask}}, options);
  ASSERT_TRUE(onnx.defined());
  EXPECT_LE(RelativeMaxError(onnx, testing::TransformerLogits(*model, ids, mask)), 1e-4);
  const std::string out = dir.Sub("export");
  ASSERT_TRUE(ExportModel(*model, out, options).ok());
  EXPECT_TRUE(PathExists(out + "/" + kOnnxDataFile));
  EXPECT_LT(*FileSize(out + "/" + kOnnxFile), *FileSize(out + "/" + kOnnxDataFile));
}

// Greedy decoding through the exported cache (one token per run) picks the same 32 tokens as
// Shrink recomputing the whole sequence each step, and each step's logits agree.
TEST(OnnxExportTest, Gpt2CacheGeneratesWhatRecomputingGenerates) {
  TempDir dir;
  auto fp32 = testing::TinyTransformer(TransformerFamily::kGpt2, dir.Sub("fp32"), 8);
  ASSERT_NE(fp32, nullptr);
  for (const auto& policy : {shrink::v1::Policy(), Uniform(0.5, 4)}) {
    std::unique_ptr<Model> compressed;
    if (policy.has_uniform()) {
      auto applied = fp32->Apply(policy);
      ASSERT_TRUE(applied.ok()) << applied.status();
      compressed = std::move(*applied);
    }
    const Model& model = compressed ? *compressed : *fp32;
    auto twin = WidenedTwin(model);  // the stored weights exactly, as MatMulNBits computes them
    ASSERT_NE(twin, nullptr);
    const TransformerConfig& c = model.impl->transformer()->weights.config;
    ExportOptions exact;  // MatMulNBits with fp32 activations: the twin's results to 1e-4
    exact.low_bit_kernel = LowBitKernel::kMatMulNBits;
    exact.nbits_accuracy_level = 0;
    ASSERT_TRUE(WriteOnnxExport(model, dir.path(), exact).ok());
    auto session = Runtime().Load(dir.Sub(kOnnxFile), 1);
    ASSERT_TRUE(session.ok()) << session.status();
    std::vector<int64_t> ids = {3, 17, 42, 8, 29};
    std::map<std::string, RuntimeTensor> feeds;
    for (int64_t i = 0; i < c.num_layers; ++i) {
      for (const char* part : {"key", "value"}) {
        feeds[absl::StrCat("past_key_values.", i, ".", part)] = RuntimeTensor{"float32", {1, c.layers[i].heads, 0, c.head_dim()}, ""};
      }
    }
    std::vector<int64_t> step_ids = ids;
    for (int step = 0; step < 32; ++step) {
      feeds["input_ids"] = RuntimeTensor::Int64({1, static_cast<int64_t>(step_ids.size())}, step_ids);
      feeds["attention_mask"] = RuntimeTensor::Int64({1, static_cast<int64_t>(ids.size())}, std::vector<int64_t>(ids.size(), 1));
      auto run = Runtime().Run(session->id, feeds);
      ASSERT_TRUE(run.ok()) << run.status();
      const torch::Tensor cached = ToTorch(run->outputs.at("logits")).select(1, -1);
      const torch::Tensor row = torch::tensor(ids, torch::kInt64).unsqueeze(0);
      const torch::Tensor recomputed = testing::TransformerLogits(*twin, row, torch::ones_like(row)).select(1, -1);
      EXPECT_LE(RelativeMaxError(cached, recomputed), 1e-4) << "step " << step;
      const int64_t next = cached.argmax(-1).item<int64_t>();
      EXPECT_EQ(next, recomputed.argmax(-1).item<int64_t>()) << "step " << step;
      ids.push_back(next);
      step_ids = {next};
      for (auto& [name, tensor] : run->outputs) {
        if (name.rfind("present.", 0) == 0) feeds["past_key_values." + name.substr(8)] = tensor;
      }
    }
    EXPECT_TRUE(Runtime().Unload(session->id).ok());
  }
}

TEST(OnnxExportTest, UnsupportedSchemeIsRefusedNamingTheLayerAndScheme) {
  OnnxGraph graph("bad");
  StoredWeight w;
  w.layer = "encoder.layer.3.ffn";
  w.scheme = "int3_experimental";
  w.bits = 3;
  w.out = 4;
  w.in = 4;
  w.weight = torch::zeros({4, 4});
  auto y = ExportLinear(graph, "x", w, "fc");
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("encoder.layer.3.ffn"), std::string::npos) << y.status();
  EXPECT_NE(y.status().message().find("int3_experimental"), std::string::npos) << y.status();
}

TEST(OnnxExportTest, OnnxRuntimeLoadErrorsComeBackWithItsMessage) {
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.Sub("model.onnx"), "this is not a protobuf").ok());
  auto session = Runtime().Load(dir.Sub("model.onnx"), 1);
  ASSERT_FALSE(session.ok());
  EXPECT_NE(session.status().message().find(dir.Sub("model.onnx")), std::string::npos) << session.status();
  EXPECT_NE(session.status().message().find("ONNX Runtime"), std::string::npos) << session.status();
}

}  // namespace
}  // namespace shrink::worker
