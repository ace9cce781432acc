// shrink predict's library: the same answers from LibTorch and from ONNX Runtime, on a model
// folder (exported on the fly) and on an export folder (model.onnx + tokenizer + export.json).
#include "worker/predict/predict.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/task_files.h"
#include "tests/worker/model_test_util.h"
#include "tests/worker/transformer_test_util.h"
#include "worker/export/export_model.h"
#include "worker/tokenizers/vocab_learner.h"

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
