// shrink predict's library: the same answers from LibTorch and from ONNX Runtime, on a model
// folder (exported on the fly) and on an export folder (model.onnx + tokenizer + export.json).
#include "worker/predict/predict.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/task_files.h"
#include "tests/worker/model_test_util.h"
#include "tests/worker/transformer_test_util.h"
#include "absl/strings/str_cat.h"
#include "worker/data/text_data.h"
#include "worker/export/export_model.h"
#include "worker/model/model_impl.h"
#include "worker/model/transformer_backend.h"
#include "worker/runtime/onnxruntime_process.h"
#include "worker/tokenizers/vocab_learner.h"
#include "worker/eval/evaluate.h"
#include "worker/nn/transformer_build.h"

namespace shrink::worker {
namespace {

using testing::TempDir;

const std::vector<std::string>& Texts() {
  static const std::vector<std::string> texts = {
      "the quick brown fox jumps over the lazy dog", "a stitch in time saves nine",
      "all that glitters is not gold",               "the early bird catches the worm",
      "fortune favours the bold and the brave",      "you will meet a tall dark stranger"};
  return texts;
}

// A tiny random transformer of `family` with a vocabulary learned from Texts(), in `dir`.
void WriteTinyModelWithTokenizer(TransformerFamily family, const std::string& dir) {
  auto tokenizer = family == TransformerFamily::kGpt2 ? BuildByteBpeTokenizer(Texts(), 300)
                                                      : BuildWordPieceTokenizer(Texts(), 60, true);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  TransformerConfig config = testing::TinyConfig(family);
  config.vocab_size = (*tokenizer)->VocabSize();
  config.label_names = {"positive", "negative", "neutral"};
  torch::manual_seed(17);
  Transformer net(config);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : net->parameters()) p.add_(torch::randn_like(p) * 0.05);
  }
  ASSERT_TRUE(WriteTransformerCheckpoint(WeightsFromModule(net), dir).ok());
  ASSERT_TRUE((*tokenizer)->Save(dir).ok());
}

void ExpectSameLabels(const std::vector<Prediction>& a, const std::vector<Prediction>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].labels.size(), b[i].labels.size()) << a[i].input;
    ASSERT_FALSE(a[i].labels.empty());
    for (size_t k = 0; k < a[i].labels.size(); ++k) {
      EXPECT_EQ(a[i].labels[k].first, b[i].labels[k].first) << a[i].input;
      EXPECT_NEAR(a[i].labels[k].second, b[i].labels[k].second, 1e-4) << a[i].input;
    }
  }
}

TEST(PredictTest, ClassifierLabelsAgreeAcrossRuntimes) {
  TempDir dir;
  WriteTinyModelWithTokenizer(TransformerFamily::kBert, dir.Sub("bert"));
  PredictOptions options;
  auto torch_labels = PredictTexts(dir.Sub("bert"), Texts(), options);
  ASSERT_TRUE(torch_labels.ok()) << torch_labels.status();
  EXPECT_EQ((*torch_labels)[0].labels.size(), 3u);
  EXPECT_TRUE((*torch_labels)[0].labels[0].first == "positive" || (*torch_labels)[0].labels[0].first == "negative" ||
              (*torch_labels)[0].labels[0].first == "neutral");
  options.runtime = PredictRuntime::kOnnxRuntime;
  auto onnx_labels = PredictTexts(dir.Sub("bert"), Texts(), options);  // exported on the fly
  ASSERT_TRUE(onnx_labels.ok()) << onnx_labels.status();
  ExpectSameLabels(*torch_labels, *onnx_labels);

  // From an export folder alone: model.onnx, the tokenizer files and export.json.
  auto model = Model::Load(dir.Sub("bert"));
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(ExportModel(**model, dir.Sub("export")).ok());
  EXPECT_FALSE(PathExists(dir.Sub("export/model.safetensors")));
  auto exported_labels = PredictTexts(dir.Sub("export"), Texts(), options);
  ASSERT_TRUE(exported_labels.ok()) << exported_labels.status();
  ExpectSameLabels(*torch_labels, *exported_labels);
}

TEST(PredictTest, LanguageModelGeneratesTheSameTokensInBothRuntimes) {
  TempDir dir;
  WriteTinyModelWithTokenizer(TransformerFamily::kGpt2, dir.Sub("gpt2"));
  PredictOptions options;
  options.max_new_tokens = 12;
  auto torch_text = PredictTexts(dir.Sub("gpt2"), {"the early bird"}, options);
  ASSERT_TRUE(torch_text.ok()) << torch_text.status();
  options.runtime = PredictRuntime::kOnnxRuntime;
  auto onnx_text = PredictTexts(dir.Sub("gpt2"), {"the early bird"}, options);
  ASSERT_TRUE(onnx_text.ok()) << onnx_text.status();
  EXPECT_FALSE((*torch_text)[0].generated_ids.empty());
  EXPECT_EQ((*torch_text)[0].generated_ids, (*onnx_text)[0].generated_ids);
  EXPECT_EQ((*torch_text)[0].generated, (*onnx_text)[0].generated);
}

// Perplexity from ONNX Runtime's logits, on the token batches `shrink eval` scores, is Shrink's
// own within 1%: fp32, int8 and 4-bit (the export's default int8 activations).
TEST(PredictTest, LanguageModelPerplexityMatchesShrinkEval) {
  TempDir dir;
  WriteTinyModelWithTokenizer(TransformerFamily::kGpt2, dir.Sub("gpt2"));
  auto fp32 = Model::Load(dir.Sub("gpt2"));
  ASSERT_TRUE(fp32.ok()) << fp32.status();
  auto text = std::make_shared<TextDataset>();
  text->task = "lm";
  for (const std::string& t : Texts()) text->test.push_back({t});
  TaskData data;
  data.name = "texts";
  data.text = text;
  auto runtime = OnnxRuntimeProcess::Start();
  ASSERT_TRUE(runtime.ok()) << runtime.status();
  for (int bits : {32, 8, 4}) {
    std::unique_ptr<Model> compressed;
    if (bits != 32) {
      v1::Policy policy;
      policy.mutable_uniform()->set_bits(bits);
      auto applied = (*fp32)->Apply(policy);
      ASSERT_TRUE(applied.ok()) << applied.status();
      compressed = std::move(*applied);
    }
    const Model& m = compressed ? *compressed : **fp32;
    EvalOptions eval;
    eval.time_latency = false;
    auto metrics = Evaluate(m, data, "test", eval);
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    TempDir out;
    ASSERT_TRUE(WriteOnnxExport(m, out.path()).ok());
    auto session = (*runtime)->Load(out.Sub(kOnnxFile), 1);
    ASSERT_TRUE(session.ok()) << session.status();
    const TransformerBackend& t = *m.impl->transformer();
    const TransformerConfig& c = t.weights.config;
    double nll = 0;
    int64_t tokens = 0;
    for (const TokenBatch& batch : TokenizeBatches(*t.tokenizer, Texts(), {}, true,
                                                   std::min<int64_t>(kTextMaxLength, c.max_sequence()), 32, t.PadId())) {
      const torch::Tensor ids = batch.ids.contiguous(), mask = batch.mask.to(torch::kInt64).contiguous();
      std::map<std::string, RuntimeTensor> feeds = {
          {"input_ids", RuntimeTensor::Int64(ids.sizes().vec(), std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel()))},
          {"attention_mask", RuntimeTensor::Int64(mask.sizes().vec(), std::vector<int64_t>(mask.data_ptr<int64_t>(), mask.data_ptr<int64_t>() + mask.numel()))}};
      for (int64_t i = 0; i < c.num_layers; ++i) {
        for (const char* part : {"key", "value"}) {
          feeds[absl::StrCat("past_key_values.", i, ".", part)] = RuntimeTensor{"float32", {ids.size(0), c.layers[i].heads, 0, c.head_dim()}, ""};
        }
      }
      auto run = (*runtime)->Run(session->id, feeds);
      ASSERT_TRUE(run.ok()) << run.status();
      const RuntimeTensor& out_logits = run->outputs.at("logits");
      std::vector<float> values = out_logits.Floats();
      const torch::Tensor logits = torch::from_blob(values.data(), out_logits.dims, torch::kFloat32);
      const int64_t n = ids.size(1);
      const torch::Tensor predicted = logits.narrow(1, 0, n - 1).reshape({-1, logits.size(2)});
      const torch::Tensor weights = mask.narrow(1, 1, n - 1).reshape({-1}).to(torch::kFloat32);
      const torch::Tensor losses = torch::nn::functional::cross_entropy(
          predicted, ids.narrow(1, 1, n - 1).reshape({-1}), torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
      nll += (losses * weights).sum().item<double>();
      tokens += static_cast<int64_t>(weights.sum().item<double>());
    }
    ASSERT_GT(tokens, 0);
    EXPECT_NEAR(std::exp(nll / tokens) / metrics->perplexity(), 1.0, 0.01) << bits << " bits";
    EXPECT_TRUE((*runtime)->Unload(session->id).ok());
  }
}

TEST(PredictTest, CnnClassesAgreeAcrossRuntimes) {
  TempDir dir;
  auto model = testing::RandomCnn(dir.Sub("cnn"), 5);
  ASSERT_NE(model, nullptr);
  const std::string images = DebianFashionMnistFiles().at(kFashionMnistTestImages);
  PredictOptions options;
  auto torch_classes = PredictImages(dir.Sub("cnn"), images, 20, options);
  ASSERT_TRUE(torch_classes.ok()) << torch_classes.status();
  ASSERT_EQ(torch_classes->size(), 20u);
  options.runtime = PredictRuntime::kOnnxRuntime;
  auto onnx_classes = PredictImages(dir.Sub("cnn"), images, 20, options);
  ASSERT_TRUE(onnx_classes.ok()) << onnx_classes.status();
  ExpectSameLabels(*torch_classes, *onnx_classes);
}

TEST(PredictTest, WrongInputKindIsRefusedNamingTheModel) {
  TempDir dir;
  auto model = testing::RandomCnn(dir.Sub("cnn"), 5);
  ASSERT_NE(model, nullptr);
  auto texts = PredictTexts(dir.Sub("cnn"), {"hello"}, PredictOptions());
  ASSERT_FALSE(texts.ok());
  EXPECT_NE(texts.status().message().find(dir.Sub("cnn")), std::string::npos) << texts.status();
  EXPECT_FALSE(ParsePredictRuntime("tensorrt").ok());
}

}  // namespace
}  // namespace shrink::worker
