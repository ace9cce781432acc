#include "worker/predict/predict.h"

#include <torch/torch.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status.h"
#include "worker/data/fashion_mnist.h"
#include "worker/export/export_model.h"
#include "worker/model/model_impl.h"
#include "worker/model/transformer_backend.h"
#include "worker/nn/cnn.h"
#include "worker/latency/runtime_inputs.h"
#include "worker/runtime/onnxruntime_process.h"
#include "worker/tokenizers/tokenizer.h"
#include "worker/model/cnn_backend.h"

namespace shrink::worker {
namespace {

using Json = nlohmann::json;

torch::Tensor Row(const std::vector<int64_t>& ids) { return torch::tensor(ids, torch::kInt64).unsqueeze(0); }

// Logits for named inputs ("input_ids" + "attention_mask", or "images"), from either runtime.
class LogitSource {
 public:
  virtual ~LogitSource() = default;
  virtual absl::StatusOr<torch::Tensor> Logits(const std::map<std::string, torch::Tensor>& inputs) = 0;

  // Up to `count` tokens after `ids`, greedily, stopping before `eos` (or at `max_sequence`
  // tokens in all). This recomputes the whole sequence per token; runtimes with a cache override it.
  virtual absl::StatusOr<std::vector<int64_t>> Generate(std::vector<int64_t> ids, int64_t count, int64_t eos,
                                                        int64_t max_sequence) {
    std::vector<int64_t> out;
    while (static_cast<int64_t>(out.size()) < count && static_cast<int64_t>(ids.size()) < max_sequence) {
      const torch::Tensor row = Row(ids);
      SHRINK_ASSIGN_OR_RETURN(torch::Tensor logits, Logits({{"input_ids", row}, {"attention_mask", torch::ones_like(row)}}));
      const int64_t next = logits[0][-1].argmax().item<int64_t>();
      if (next == eos) break;
      ids.push_back(next);
      out.push_back(next);
    }
    return out;
  }
};

class LibTorchSource : public LogitSource {
 public:
  explicit LibTorchSource(std::unique_ptr<Model> model) : model_(std::move(model)) {}
  absl::StatusOr<torch::Tensor> Logits(const std::map<std::string, torch::Tensor>& inputs) override {
    torch::NoGradGuard no_grad;
    try {
      if (CnnBackend* cnn = model_->impl->cnn()) return cnn->net->forward(inputs.at("images"));
      return model_->impl->transformer()->net->forward(inputs.at("input_ids"), inputs.at("attention_mask"));
    } catch (const c10::Error& e) {
      return absl::InternalError(absl::StrCat("LibTorch: ", e.what_without_backtrace()));
    }
  }

 private:
  std::unique_ptr<Model> model_;
};

class OnnxRuntimeSource : public LogitSource {
 public:
  static absl::StatusOr<std::unique_ptr<OnnxRuntimeSource>> Open(const std::string& onnx_path, int threads) {
    std::unique_ptr<OnnxRuntimeSource> source(new OnnxRuntimeSource());
    SHRINK_ASSIGN_OR_RETURN(source->process_, OnnxRuntimeProcess::Start());
    SHRINK_ASSIGN_OR_RETURN(source->session_, source->process_->Load(onnx_path, threads));
    return source;
  }
  absl::StatusOr<torch::Tensor> Logits(const std::map<std::string, torch::Tensor>& inputs) override {
    std::map<std::string, RuntimeTensor> feeds;
    for (const auto& [name, t] : inputs) feeds[name] = ToRuntimeTensor(t);
    AddEmptyPastInputs(past_, feeds.count("input_ids") ? feeds.at("input_ids").dims[0] : 1, &feeds);
    SHRINK_ASSIGN_OR_RETURN(OnnxRuntimeProcess::RunResult run, process_->Run(session_.id, feeds));
    return LogitsOf(run);
  }

  // One token per call after the prompt, through the exported cache (past_key_values.* in,
  // present.* out).
  absl::StatusOr<std::vector<int64_t>> Generate(std::vector<int64_t> ids, int64_t count, int64_t eos,
                                                int64_t max_sequence) override {
    std::map<std::string, RuntimeTensor> feeds;
    feeds["input_ids"] = ToRuntimeTensor(Row(ids));
    feeds["attention_mask"] = ToRuntimeTensor(torch::ones({1, static_cast<int64_t>(ids.size())}, torch::kInt64));
    AddEmptyPastInputs(past_, 1, &feeds);
    std::vector<int64_t> out;
    while (static_cast<int64_t>(out.size()) < count && static_cast<int64_t>(ids.size()) < max_sequence) {
      SHRINK_ASSIGN_OR_RETURN(OnnxRuntimeProcess::RunResult run, process_->Run(session_.id, feeds));
      SHRINK_ASSIGN_OR_RETURN(torch::Tensor logits, LogitsOf(run));
      const int64_t next = logits[0][-1].argmax().item<int64_t>();
      if (next == eos) break;
      ids.push_back(next);
      out.push_back(next);
      feeds["input_ids"] = ToRuntimeTensor(Row({next}));
      feeds["attention_mask"] = ToRuntimeTensor(torch::ones({1, static_cast<int64_t>(ids.size())}, torch::kInt64));
      for (auto& [name, tensor] : run.outputs) {
        if (name.rfind("present.", 0) == 0) feeds["past_key_values." + name.substr(8)] = std::move(tensor);
      }
    }
    return out;
  }

 private:
  static absl::StatusOr<torch::Tensor> LogitsOf(const OnnxRuntimeProcess::RunResult& run) {
    auto it = run.outputs.find("logits");
    if (it == run.outputs.end()) return absl::InvalidArgumentError("the ONNX model has no output named logits");
    return FromRuntimeTensor(it->second);
  }

 public:
  PastInputShapes past_;  // a decoder's cache inputs, from export.json

 private:
  std::unique_ptr<OnnxRuntimeProcess> process_;
  OnnxRuntimeProcess::Session session_;
};

// What predicting needs besides logits: export.json's "task" and the tokenizer.
struct Served {
  Json task;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::unique_ptr<LogitSource> source;
  std::string temp_dir;  // an export made for this prediction; removed at the end
  ~Served() {
    source.reset();
    if (!temp_dir.empty()) RemoveAll(temp_dir);
  }
};

absl::StatusOr<std::unique_ptr<Served>> Open(const std::string& dir, const PredictOptions& options) {
  auto served = std::make_unique<Served>();
  std::string onnx_dir = dir;
  if (options.runtime == PredictRuntime::kLibTorch || !PathExists(absl::StrCat(dir, "/", kOnnxFile))) {
    SHRINK_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::Load(dir));
    if (options.runtime == PredictRuntime::kOnnxRuntime) {
      // A model folder without its export: export it for this prediction.
      SHRINK_ASSIGN_OR_RETURN(served->temp_dir, MakeTempDir("shrink-predict-"));
      SHRINK_RETURN_IF_ERROR(WriteOnnxExport(*model, served->temp_dir).status());
      onnx_dir = served->temp_dir;
    } else {
      served->task = Json::parse(ServingInfoJson(*model));
      if (TransformerBackend* t = model->impl->transformer()) served->tokenizer = t->tokenizer;
      served->source = std::make_unique<LibTorchSource>(std::move(model));
      return served;
    }
  }
  const std::string manifest_path = absl::StrCat(onnx_dir, "/", kExportManifestFile);
  SHRINK_ASSIGN_OR_RETURN(std::string manifest_text, ReadFile(manifest_path));
  Json manifest = Json::parse(manifest_text, nullptr, false);
  if (manifest.is_discarded() || !manifest.contains("task")) {
    return absl::InvalidArgumentError(absl::StrCat(manifest_path, ": not an export manifest (no \"task\")"));
  }
  served->task = manifest["task"];
  if (served->task.value("kind", "") != "image_classification") {
    SHRINK_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, LoadTokenizer(onnx_dir));
    served->tokenizer = std::move(tokenizer);
  }
  SHRINK_ASSIGN_OR_RETURN(std::unique_ptr<OnnxRuntimeSource> source,
                          OnnxRuntimeSource::Open(absl::StrCat(onnx_dir, "/", kOnnxFile), options.threads));
  SHRINK_ASSIGN_OR_RETURN(source->past_, ReadPastInputShapes(manifest_text));
  served->source = std::move(source);
  return served;
}

// The `top` most likely labels of one row of logits.
std::vector<std::pair<std::string, double>> TopLabels(const torch::Tensor& logits, const Json& labels, int64_t top) {
  torch::Tensor probs = torch::softmax(logits.to(torch::kFloat64), -1);
  auto sorted = probs.sort(-1, /*descending=*/true);
  std::vector<std::pair<std::string, double>> out;
  for (int64_t i = 0; i < std::min<int64_t>(top, probs.size(-1)); ++i) {
    const int64_t id = std::get<1>(sorted)[i].item<int64_t>();
    std::string name = id < static_cast<int64_t>(labels.size()) ? labels[id].get<std::string>() : std::to_string(id);
    out.emplace_back(std::move(name), std::get<0>(sorted)[i].item<double>());
  }
  return out;
}

}  // namespace

absl::StatusOr<PredictRuntime> ParsePredictRuntime(const std::string& name) {
  if (name == "libtorch") return PredictRuntime::kLibTorch;
  if (name == "onnxruntime") return PredictRuntime::kOnnxRuntime;
  return absl::InvalidArgumentError(absl::StrCat("--runtime \"", name, "\": expected libtorch or onnxruntime"));
}

absl::StatusOr<std::vector<Prediction>> PredictTexts(const std::string& dir, const std::vector<std::string>& texts,
                                                     const PredictOptions& options) {
  torch::set_num_threads(std::max(1, options.threads));
  SHRINK_ASSIGN_OR_RETURN(std::unique_ptr<Served> served, Open(dir, options));
  const std::string kind = served->task.value("kind", "");
  if (kind == "image_classification") {
    return absl::InvalidArgumentError(absl::StrCat(dir, " is an image classifier: give it images (--images FILE)"));
  }
  if (!served->tokenizer) {
    return absl::FailedPreconditionError(absl::StrCat(dir, " has no tokenizer files (vocab.txt, or vocab.json + merges.txt)"));
  }
  const Tokenizer& tokenizer = *served->tokenizer;
  const int64_t max_sequence = served->task.value("max_sequence", int64_t{512});
  std::vector<Prediction> out;
  for (const std::string& text : texts) {
    Prediction p;
    p.input = text;
    if (kind == "language_modelling") {
      // As Shrink frames language-model text: a leading BOS (or EOS), then the text; greedy.
      const SpecialTokens& s = tokenizer.Specials();
      std::vector<int64_t> ids;
      if (s.bos >= 0 || s.eos >= 0) ids.push_back(s.bos >= 0 ? s.bos : s.eos);
      for (int64_t id : tokenizer.Encode(text)) ids.push_back(id);
      if (ids.empty()) return absl::InvalidArgumentError("an empty text with no BOS/EOS token to start from");
      if (static_cast<int64_t>(ids.size()) > max_sequence) ids.resize(static_cast<size_t>(max_sequence));
      SHRINK_ASSIGN_OR_RETURN(p.generated_ids, served->source->Generate(ids, options.max_new_tokens, s.eos, max_sequence));
      p.generated = tokenizer.Decode(p.generated_ids);
    } else {
      const std::vector<int64_t> ids = EncodeForClassification(tokenizer, text, static_cast<int>(std::min<int64_t>(max_sequence, 512)));
      const torch::Tensor row = Row(ids);
      SHRINK_ASSIGN_OR_RETURN(torch::Tensor logits,
                              served->source->Logits({{"input_ids", row}, {"attention_mask", torch::ones_like(row)}}));
      p.labels = TopLabels(logits[0], served->task["labels"], options.top_labels);
    }
    out.push_back(std::move(p));
  }
  return out;
}

absl::StatusOr<std::vector<Prediction>> PredictImages(const std::string& dir, const std::string& idx_path, int64_t limit,
                                                      const PredictOptions& options) {
  torch::set_num_threads(std::max(1, options.threads));
  SHRINK_ASSIGN_OR_RETURN(std::unique_ptr<Served> served, Open(dir, options));
  if (served->task.value("kind", "") != "image_classification") {
    return absl::InvalidArgumentError(absl::StrCat(dir, " is not an image classifier: give it text (--text or --input)"));
  }
  SHRINK_ASSIGN_OR_RETURN(std::string bytes, ReadMaybeGzip(idx_path, idx_path));
  SHRINK_ASSIGN_OR_RETURN(IdxFile idx, ParseIdx(bytes, idx_path, 3));
  if (idx.dims[1] != kCnnImageSide || idx.dims[2] != kCnnImageSide) {
    return absl::InvalidArgumentError(absl::StrCat(idx_path, ": images are ", idx.dims[1], "x", idx.dims[2], ", expected 28x28"));
  }
  const int64_t count = limit > 0 ? std::min(limit, idx.dims[0]) : idx.dims[0];
  const Json& pre = served->task["preprocessing"];
  torch::Tensor images = torch::from_blob(idx.payload.data(), {count, 1, idx.dims[1], idx.dims[2]}, torch::kUInt8)
                             .to(torch::kFloat32)
                             .mul(pre.value("scale", 1.0 / 255.0))
                             .sub(pre.value("mean", 0.0))
                             .div(pre.value("std", 1.0));
  SHRINK_ASSIGN_OR_RETURN(torch::Tensor logits, served->source->Logits({{"images", images}}));
  std::vector<Prediction> out;
  for (int64_t i = 0; i < count; ++i) {
    Prediction p;
    p.input = absl::StrCat("image ", i);
    p.labels = TopLabels(logits[i], served->task["labels"], options.top_labels);
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace shrink::worker
