#include "worker/model/transformer_backend.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/policy.h"
#include "common/status.h"
#include "worker/model/describe.h"
#include "worker/model/model_impl.h"
#include "worker/data/text_data.h"
#include "worker/tokenizers/tokenizer.h"
#include "worker/compress/distill/distill.h"
#include "worker/nn/torch_device.h"
#include "worker/compress/transformer_compress.h"
#include "worker/checkpoint/safetensors_torch.h"
#include "worker/nn/transformer_build.h"

namespace shrink::worker {
namespace {

bool HasTokenizerFiles(const std::string& dir) {
  return PathExists(dir + "/vocab.txt") || (PathExists(dir + "/vocab.json") && PathExists(dir + "/merges.txt"));
}

const std::vector<TextExample>* FindTextSplit(const TextDataset& data, const std::string& split) {
  if (split == "train") return &data.train;
  if (split == "validation") return &data.validation;
  if (split == "test") return &data.test;
  return nullptr;
}

// The classes of `data`'s labels in the model's head (ClassIdsForModel), errors naming the task.
absl::StatusOr<std::vector<int64_t>> ClassIds(const TaskData& data, const TransformerConfig& config) {
  auto ids = ClassIdsForModel(*data.text, config.label_names, config.num_labels);
  if (!ids.ok()) return absl::InvalidArgumentError(absl::StrCat("task ", data.name, ": ", ids.status().message()));
  return ids;
}

absl::Status NonFiniteOutputs(const std::string& split) {
  return absl::InvalidArgumentError(absl::StrCat("the model's outputs on the ", split,
                                                 " split are NaN or infinite: its weights, or a compression step, diverged"));
}

torch::Tensor SyntheticIds(int64_t batch, int64_t length, int64_t vocab) {
  auto generator = at::detail::createCPUGenerator(12345);
  return at::randint(vocab, {batch, length}, generator, torch::kInt64);
}

}  // namespace

TransformerBackend* Model::Impl::transformer() const { return dynamic_cast<TransformerBackend*>(backend.get()); }


std::pair<double, int64_t> LmLoss(Transformer& net, const TokenBatch& batch) {
  const torch::Device device = ModuleDevice(*net);
  const torch::Tensor ids = batch.ids.to(device), mask = batch.mask.to(device);
  torch::Tensor logits = net->forward(ids, mask);
  const int64_t t = ids.size(1);
  if (t < 2) return {0.0, 0};
  torch::Tensor predicted = logits.narrow(1, 0, t - 1).reshape({-1, logits.size(2)});
  torch::Tensor targets = ids.narrow(1, 1, t - 1).reshape({-1});
  torch::Tensor weights = mask.narrow(1, 1, t - 1).reshape({-1}).to(torch::kFloat32);
  torch::Tensor nll = torch::nn::functional::cross_entropy(
      predicted, targets, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  return {(nll * weights).sum().item<double>(), static_cast<int64_t>(weights.sum().item<double>())};
}

absl::StatusOr<std::unique_ptr<TransformerBackend>> MakeTransformerBackend(TransformerWeights weights,
                                                                           std::shared_ptr<const Tokenizer> tokenizer,
                                                                           torch::Device device) {
  auto backend = std::make_unique<TransformerBackend>();
  SHRINK_ASSIGN_OR_RETURN(backend->net, BuildTransformer(weights, device));
  backend->device = device;
  SHRINK_ASSIGN_OR_RETURN(std::string bytes, TransformerSafetensorsBytes(weights));
  backend->bytes_ = static_cast<int64_t>(bytes.size() + TransformerConfigJson(weights.config).size());
  if (tokenizer) {
    SHRINK_ASSIGN_OR_RETURN(std::string dir, MakeTempDir("shrink-tokenizer-"));
    absl::Status saved = tokenizer->Save(dir);
    absl::StatusOr<int64_t> size = saved.ok() ? DirectoryBytes(dir) : absl::StatusOr<int64_t>(saved);
    RemoveAll(dir);
    if (!size.ok()) return size.status();
    backend->bytes_ += *size;
  }
  backend->weights = std::move(weights);
  backend->tokenizer = std::move(tokenizer);
  return backend;
}

absl::StatusOr<std::unique_ptr<ModelBackend>> LoadTransformerBackend(const std::string& dir, torch::Device device) {
  SHRINK_ASSIGN_OR_RETURN(TransformerWeights weights, ReadTransformerCheckpoint(dir));
  std::shared_ptr<const Tokenizer> tokenizer;
  if (HasTokenizerFiles(dir)) {
    SHRINK_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> loaded, LoadTokenizer(dir));
    if (loaded->VocabSize() > weights.config.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(dir, ": the tokenizer has ", loaded->VocabSize(),
                                                     " tokens but the model's vocab_size is ",
                                                     weights.config.vocab_size));
    }
    tokenizer = std::move(loaded);
  }
  SHRINK_ASSIGN_OR_RETURN(auto backend, MakeTransformerBackend(std::move(weights), std::move(tokenizer), device));
  return std::unique_ptr<ModelBackend>(std::move(backend));
}

absl::Status InitTransformer(const std::string& arch, const std::string& preset, uint64_t seed,
                             const std::string& out_dir) {
  SHRINK_ASSIGN_OR_RETURN(TransformerConfig config, TransformerPreset(arch, preset, 0, 2));
  torch::manual_seed(seed);
  Transformer net(config);
  return WriteTransformerCheckpoint(WeightsFromModule(net), out_dir);
}

int64_t TransformerBackend::PadId() const {
  if (tokenizer && tokenizer->Specials().pad >= 0) return tokenizer->Specials().pad;
  if (tokenizer && tokenizer->Specials().eos >= 0) return tokenizer->Specials().eos;
  return weights.config.pad_token_id;
}

shrink::v1::ModelDescription TransformerBackend::Describe() const {
  const TransformerConfig& c = weights.config;
  const int64_t h = c.hidden, d = c.head_dim();
  const int64_t t = std::min<int64_t>(kDescribeSequenceLength, c.max_sequence());
  shrink::v1::ModelDescription description;
  description.set_model_type(FamilyName(c.family));
  const int64_t tables = c.vocab_size + c.max_positions + c.type_vocab_size;
  int64_t embedding_params = tables * h + (c.is_decoder() ? 2 * h : 2 * h);  // embedding LN or GPT-2's ln_f
  // GPT-2's tied LM head computes with the embedding table: its work is counted here.
  int64_t embedding_flops = c.is_decoder() ? t * h * c.vocab_size : 0;
  *description.add_layers() = DescribeLayer("embeddings", "embedding", tables, h, 1, embedding_params, embedding_flops, false, 1);
  const std::string prefix = BlockPrefix(c);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const int64_t heads = c.layers[i].heads, inner = heads * d, inter = c.layers[i].intermediate;
    *description.add_layers() = DescribeLayer(absl::StrCat(prefix, i, ".attention"), "attention", h, heads, 4 * d,
                                              4 * h * inner + 3 * inner + h + 2 * h, 4 * t * h * inner + 2 * t * t * inner, true, 1);
    *description.add_layers() = DescribeLayer(absl::StrCat(prefix, i, ".ffn"), "ffn", h, inter, 2, 2 * h * inter + inter + 3 * h,
                                              2 * t * h * inter, true, 1);
  }
  if (!c.is_decoder()) {
    *description.add_layers() = DescribeLayer("head", "head", h, c.num_labels, 1, h * h + h + c.num_labels * (h + 1),
                                              h * h + h * c.num_labels, false, 1);
  }
  SetDescriptionTotals(&description, bytes_);
  return description;
}

absl::StatusOr<std::unique_ptr<ModelBackend>> TransformerBackend::Compress(
    const std::vector<shrink::v1::LayerAction>& actions, const std::string& policy_json,
    const ApplyOptions& options) const {
  std::vector<CalibrationBatch> batches;
  bool needs_data = options.criterion == PruneCriterion::kActivation;
  for (const auto& action : actions) needs_data = needs_data || (action.bits() >= kMinBits && action.bits() <= 7);
  const TextDataset* text = options.data.text.get();
  if (needs_data && text != nullptr && tokenizer && !text->train.empty() &&
      text->IsLanguageModelling() == weights.config.is_decoder()) {
    std::vector<std::string> texts;
    for (const TextExample* example : SpreadSample(text->train, kCalibrationExamples)) texts.push_back(example->text);
    const int64_t max_length = std::min<int64_t>(kTextMaxLength, weights.config.max_sequence());
    for (const TokenBatch& batch : TokenizeBatches(*tokenizer, texts, {}, text->IsLanguageModelling(), max_length, 32, PadId())) {
      batches.push_back({batch.ids, batch.mask});
    }
  }
  const PruneImportance importance =
      options.criterion == PruneCriterion::kActivation ? PruneImportance::kActivation : PruneImportance::kMagnitude;
  // Distillation trains on the training split: as many examples as its steps can use.
  TransformerDistillation distill;
  distill.options = options.distill;
  const int64_t steps = DistillSteps(actions, options.distill.max_steps);
  if (steps > 0 && text != nullptr && tokenizer && !text->train.empty() &&
      text->IsLanguageModelling() == weights.config.is_decoder()) {
    const bool lm = text->IsLanguageModelling();
    const int64_t batch = std::max<int64_t>(1, options.distill.batch_size);
    std::vector<std::string> texts;
    std::vector<int64_t> labels;
    std::vector<int64_t> classes;
    if (!lm) {
      SHRINK_ASSIGN_OR_RETURN(classes, ClassIds(options.data, weights.config));
    }
    for (const TextExample* example : SpreadSample(text->train, static_cast<size_t>(steps * batch))) {
      texts.push_back(example->text);
      if (!lm) labels.push_back(classes[example->label]);
    }
    const int64_t max_length = std::min<int64_t>(kTextMaxLength, weights.config.max_sequence());
    distill.train = TokenizeBatches(*tokenizer, texts, labels, lm, max_length, batch, PadId());
  }
  SHRINK_ASSIGN_OR_RETURN(TransformerWeights compressed,
                          CompressTransformer(weights, actions, batches, importance, distill, device));
  compressed.config.policy_json = policy_json;
  // Distillation can diverge; such a candidate fails here rather than being scored.
  SHRINK_RETURN_IF_ERROR(CheckAllFinite(compressed.tensors, "the compressed model's tensor "));
  SHRINK_ASSIGN_OR_RETURN(auto backend, MakeTransformerBackend(std::move(compressed), tokenizer, device));
  return std::unique_ptr<ModelBackend>(std::move(backend));
}

absl::Status TransformerBackend::Save(const std::string& dir) const {
  SHRINK_RETURN_IF_ERROR(WriteTransformerCheckpoint(weights, dir));
  if (tokenizer) SHRINK_RETURN_IF_ERROR(tokenizer->Save(dir));
  return absl::OkStatus();
}

absl::StatusOr<Quality> TransformerBackend::Measure(const TaskData& data, const std::string& split_name,
                                                    int64_t max_examples, const RecallFlag* recalled) const {
  const TransformerConfig& c = weights.config;
  if (!data.text) return absl::InvalidArgumentError(absl::StrCat("a ", FamilyName(c.family), " model is measured on text; task ", data.name, " is not"));
  if (!tokenizer) {
    return absl::FailedPreconditionError(
        "the model folder has no tokenizer files (vocab.txt, or vocab.json + merges.txt), so it cannot read text");
  }
  const TextDataset& text = *data.text;
  const std::vector<TextExample>* split = FindTextSplit(text, split_name);
  if (split == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown split \"", split_name, "\" (train, validation, test)"));
  }
  if (split->empty()) return absl::InvalidArgumentError(absl::StrCat("split ", split_name, " is empty"));
  const bool lm = text.IsLanguageModelling();
  if (lm != c.is_decoder()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "task ", data.name, lm ? " is language modelling, which needs a gpt2 model" : " is classification, which needs an encoder (bert, distilbert, roberta)"));
  }
  std::vector<int64_t> classes;
  if (!lm) {
    SHRINK_ASSIGN_OR_RETURN(classes, ClassIds(data, c));
  }
  const size_t count = max_examples > 0 ? std::min<size_t>(max_examples, split->size()) : split->size();
  std::vector<std::string> texts;
  std::vector<int64_t> labels;
  for (size_t i = 0; i < count; ++i) {
    texts.push_back((*split)[i].text);
    if (!lm) labels.push_back(classes[(*split)[i].label]);
  }
  const int64_t max_length = std::min<int64_t>(kTextMaxLength, c.max_sequence());
  std::vector<TokenBatch> batches = TokenizeBatches(*tokenizer, texts, labels, lm, max_length, 32, PadId());
  torch::NoGradGuard no_grad;
  Transformer module = net;
  TORCH_CHECK(!module->is_training(), "model is not in eval mode");
  Quality quality;
  quality.examples = static_cast<int64_t>(count);
  if (lm) {
    double nll = 0;
    int64_t tokens = 0;
    for (const auto& batch : batches) {
      SHRINK_RETURN_IF_ERROR(CheckNotRecalled(recalled));
      auto [sum, n] = LmLoss(module, batch);
      nll += sum;
      tokens += n;
    }
    if (tokens == 0) return absl::InvalidArgumentError(absl::StrCat("split ", split_name, " has no tokens to predict"));
    if (!std::isfinite(nll)) return NonFiniteOutputs(split_name);
    quality.perplexity = std::exp(nll / static_cast<double>(tokens));
    return quality;
  }
  int64_t correct = 0;
  for (const auto& batch : batches) {
    SHRINK_RETURN_IF_ERROR(CheckNotRecalled(recalled));
    torch::Tensor logits = module->forward(batch.ids.to(device), batch.mask.to(device));
    if (!torch::isfinite(logits).all().item<bool>()) return NonFiniteOutputs(split_name);
    correct += logits.argmax(1).to(torch::kCPU).eq(batch.labels).sum().item<int64_t>();
  }
  quality.accuracy = static_cast<double>(correct) / static_cast<double>(count);
  return quality;
}

std::map<std::string, torch::Tensor> TransformerBackend::LatencyInputs(const EvalOptions& options,
                                                                      int* examples) const {
  *examples = options.text_latency_batch;
  const int64_t length = std::min<int64_t>(options.sequence_length, weights.config.max_sequence());
  torch::Tensor ids = SyntheticIds(options.text_latency_batch, length, weights.config.vocab_size);
  return {{"input_ids", ids}, {"attention_mask", torch::ones_like(ids)}};
}

std::function<void()> TransformerBackend::LatencyProbe(const EvalOptions& options, int* examples) const {
  std::map<std::string, torch::Tensor> inputs = LatencyInputs(options, examples);
  torch::Tensor ids = inputs.at("input_ids").to(device);
  torch::Tensor mask = inputs.at("attention_mask").to(device);
  Transformer module = net;
  return [module, ids, mask]() mutable {
    torch::NoGradGuard no_grad;
    module->forward(ids, mask);
  };
}

std::vector<double> TransformerBackend::LayerTimes(const EvalOptions& options) const {
  torch::NoGradGuard no_grad;
  const int64_t length = std::min<int64_t>(options.sequence_length, weights.config.max_sequence());
  torch::Tensor ids = SyntheticIds(options.text_latency_batch, length, weights.config.vocab_size).to(device);
  Transformer module = net;
  std::vector<double> ms;
  module->ProfiledForward(ids, torch::ones_like(ids), ms);
  if (weights.config.is_decoder()) {
    // No separate head layer: ln_f and the tied LM head belong to "embeddings".
    ms.front() += ms.back();
    ms.pop_back();
  }
  return ms;
}

}  // namespace shrink::worker
