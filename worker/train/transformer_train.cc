// Training the reference transformers from scratch on text, deterministically
// for a seed and thread count: a BERT-style classifier (WordPiece vocabulary)
// and a GPT-2-style language model (byte-level BPE), vocabularies built from
// the training split, saved in Hugging Face's file formats.
#include <chrono>
#include <cmath>
#include <optional>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"
#include "worker/model/model.h"
#include "worker/model/model_impl.h"
#include "worker/data/text_data.h"
#include "worker/tokenizers/tokenizer.h"
#include "worker/model/transformer_backend.h"
#include "worker/tokenizers/vocab_learner.h"
#include "worker/train/train.h"
#include "worker/nn/device.h"
#include "worker/nn/transformer_build.h"

namespace shrink::worker {
namespace {

constexpr double kWeightDecay = 0.01;
constexpr double kWarmupFraction = 0.05;
constexpr int64_t kTrainBatch = 32;

void Shuffle(std::vector<size_t>& order, std::mt19937_64& rng) {
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
}

std::vector<TokenBatch> Batches(const Tokenizer& tokenizer, const std::vector<TextExample>& examples, bool lm,
                                int64_t max_length, int64_t batch_size, int64_t pad) {
  std::vector<std::string> texts;
  std::vector<int64_t> labels;
  for (const auto& e : examples) {
    texts.push_back(e.text);
    if (!lm) labels.push_back(e.label);
  }
  return TokenizeBatches(tokenizer, texts, labels, lm, max_length, batch_size, pad);
}

// Accuracy or perplexity of `net` (switched to eval mode) on batches.
double Score(Transformer& net, const std::vector<TokenBatch>& batches, bool lm) {
  torch::NoGradGuard no_grad;
  net->eval();
  double nll = 0;
  int64_t tokens = 0, correct = 0, total = 0;
  for (const auto& batch : batches) {
    if (lm) {
      auto [sum, n] = LmLoss(net, batch);
      nll += sum;
      tokens += n;
    } else {
      correct += net->forward(batch.ids, batch.mask).argmax(1).eq(batch.labels).sum().item<int64_t>();
      total += batch.ids.size(0);
    }
  }
  if (lm) return tokens > 0 ? std::exp(nll / static_cast<double>(tokens)) : 0.0;
  return total > 0 ? static_cast<double>(correct) / static_cast<double>(total) : 0.0;
}

// The weights fine-tuning starts from: an uncompressed model of the kind `lm` asks for.
absl::StatusOr<TransformerWeights> InitialWeights(const std::string& dir, bool lm) {
  SHRINK_ASSIGN_OR_RETURN(TransformerWeights weights, ReadTransformerCheckpoint(dir));
  if (!weights.IsUncompressed()) {
    return absl::InvalidArgumentError(absl::StrCat(dir, ": --init needs an uncompressed model; this one was compressed ",
                                                   "(fine-tune the model it came from)"));
  }
  if (weights.config.is_decoder() != lm) {
    return absl::InvalidArgumentError(absl::StrCat(dir, ": a ", FamilyName(weights.config.family), " model cannot be ",
                                                   lm ? "trained as a language model (gpt2)" : "trained as a classifier (bert)",
                                                   "; pick the --arch of its kind"));
  }
  return weights;
}

// Copies the pretrained tensors into `net` (same config), all but a classifier's head, which
// keeps its fresh seeded initialisation: the task's labels are not the pretrained model's.
void CopyPretrained(const TransformerWeights& pretrained, bool lm, Transformer& net) {
  torch::NoGradGuard no_grad;
  for (auto& item : net->named_parameters()) {
    if (!lm && absl::StartsWith(item.key(), "classifier.")) continue;
    auto it = pretrained.tensors.find(item.key());
    TORCH_CHECK(it != pretrained.tensors.end() && it->second.sizes() == item.value().sizes(),
                "pretrained tensor ", item.key(), " is missing or has another shape");
    item.value().copy_(it->second.to(torch::kFloat32));
  }
}

}  // namespace

absl::StatusOr<TrainReport> TrainTransformer(const std::string& arch, const TextDataset& data,
                                             const TrainOptions& options, const std::string& out_dir,
                                             const std::function<void(const std::string&)>& progress) {
  if (arch != "bert" && arch != "gpt2") return absl::InvalidArgumentError(absl::StrCat("cannot train arch ", arch, " on text"));
  const bool lm = arch == "gpt2";
  if (lm != data.IsLanguageModelling()) {
    return absl::InvalidArgumentError(absl::StrCat("task ", data.task, lm ? " has labels; gpt2 trains on language-modelling data"
                                                                         : " has no labels; bert trains on classification data"));
  }
  if (options.epochs < 1 || options.batch_size < 1 || !(options.learning_rate > 0) || options.vocab_size < 300 ||
      options.max_length < 8 || options.max_train_examples < 0) {
    return absl::InvalidArgumentError(
        "TrainOptions: epochs, batch_size, learning_rate must be positive, vocab_size >= 300, max_length >= 8");
  }
  if (data.train.empty() || data.validation.empty() || data.test.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("task ", data.task, " needs non-empty train, validation and test splits"));
  }
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  try {
    const int threads = ConfigureTorch(options.threads);
    std::vector<TextExample> train = data.train;
    if (options.max_train_examples > 0 && static_cast<int64_t>(train.size()) > options.max_train_examples) {
      train.resize(options.max_train_examples);
    }
    std::unique_ptr<Tokenizer> tokenizer;
    TransformerConfig config;
    std::optional<TransformerWeights> init;
    if (!options.init_dir.empty()) {
      SHRINK_ASSIGN_OR_RETURN(init, InitialWeights(options.init_dir, lm));
      SHRINK_ASSIGN_OR_RETURN(tokenizer, LoadTokenizer(options.init_dir));
      config = init->config;
      if (!lm) config.num_labels = static_cast<int64_t>(data.label_names.size());
      if (progress) progress(absl::StrFormat("fine-tuning %s from %s: %d tokens of vocabulary", FamilyName(config.family), options.init_dir, tokenizer->VocabSize()));
    } else {
      std::vector<std::string> texts;
      for (const auto& e : train) texts.push_back(e.text);
      if (lm) {
        SHRINK_ASSIGN_OR_RETURN(tokenizer, BuildByteBpeTokenizer(texts, static_cast<int>(options.vocab_size)));
      } else {
        SHRINK_ASSIGN_OR_RETURN(tokenizer, BuildWordPieceTokenizer(texts, static_cast<int>(options.vocab_size), true));
      }
      if (progress) progress(absl::StrFormat("vocabulary: %d tokens from %d training texts, %.1f s", tokenizer->VocabSize(), texts.size(), elapsed()));
      SHRINK_ASSIGN_OR_RETURN(config, TransformerPreset(arch, options.preset, tokenizer->VocabSize(),
                                                        lm ? 2 : static_cast<int64_t>(data.label_names.size())));
    }
    const SpecialTokens& specials = tokenizer->Specials();
    const int64_t pad = specials.pad >= 0 ? specials.pad : std::max<int64_t>(specials.eos, 0);
    config.pad_token_id = pad;
    if (!lm) config.label_names = data.label_names;
    if (lm && specials.eos >= 0 && !init) {
      config.original_json = absl::StrCat(R"({"bos_token_id": )", specials.bos >= 0 ? specials.bos : specials.eos,
                                          R"(, "eos_token_id": )", specials.eos, "}");
    }
    const int64_t max_length = std::min<int64_t>(options.max_length, config.max_sequence());
    std::vector<TokenBatch> train_batches = Batches(*tokenizer, train, lm, max_length, options.batch_size, pad);
    std::vector<TokenBatch> validation = Batches(*tokenizer, data.validation, lm, std::min<int64_t>(kTextMaxLength, config.max_sequence()), kTrainBatch, pad);

    torch::manual_seed(options.seed);
    Transformer net(config);
    if (init) CopyPretrained(*init, lm, net);
    std::vector<torch::Tensor> decay, no_decay;
    for (const auto& item : net->named_parameters()) {
      (item.value().dim() >= 2 ? decay : no_decay).push_back(item.value());
    }
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                   torch::optim::AdamWOptions(options.learning_rate).weight_decay(kWeightDecay)));
    groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                      torch::optim::AdamWOptions(options.learning_rate).weight_decay(0)));
    torch::optim::AdamW optimizer(groups, torch::optim::AdamWOptions(options.learning_rate));
    const int64_t total_steps = static_cast<int64_t>(train_batches.size()) * options.epochs;
    const int64_t warmup = std::max<int64_t>(1, static_cast<int64_t>(kWarmupFraction * total_steps));
    std::vector<size_t> order(train_batches.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::mt19937_64 rng(options.seed);
    int64_t step = 0;
    TrainReport report;
    double last_score = 0;
    for (int epoch = 1; epoch <= options.epochs; ++epoch) {
      net->train();
      Shuffle(order, rng);
      double loss_sum = 0;
      for (size_t index : order) {
        const TokenBatch& batch = train_batches[index];
        // Linear warm-up then linear decay to zero.
        const double scale = step < warmup ? static_cast<double>(step + 1) / warmup
                                           : std::max(0.0, static_cast<double>(total_steps - step) / (total_steps - warmup));
        for (auto& group : optimizer.param_groups()) {
          static_cast<torch::optim::AdamWOptions&>(group.options()).lr(options.learning_rate * scale);
        }
        optimizer.zero_grad();
        torch::Tensor loss;
        if (lm) {
          torch::Tensor logits = net->forward(batch.ids, batch.mask);
          const int64_t t = batch.ids.size(1);
          if (t < 2) continue;
          torch::Tensor targets = batch.ids.narrow(1, 1, t - 1).masked_fill(batch.mask.narrow(1, 1, t - 1).eq(0), -100);
          loss = torch::nn::functional::cross_entropy(logits.narrow(1, 0, t - 1).reshape({-1, logits.size(2)}),
                                                      targets.reshape({-1}),
                                                      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
        } else {
          loss = torch::nn::functional::cross_entropy(net->forward(batch.ids, batch.mask), batch.labels);
        }
        loss.backward();
        torch::nn::utils::clip_grad_norm_(net->parameters(), 1.0);
        optimizer.step();
        loss_sum += loss.item<double>();
        ++step;
      }
      last_score = Score(net, validation, lm);
      report.epochs = epoch;
      if (progress) {
        progress(absl::StrFormat("epoch %d/%d: loss %.4f, validation %s %.4g, %.1f s (%d threads)", epoch, options.epochs,
                                 loss_sum / std::max<size_t>(1, order.size()), lm ? "perplexity" : "accuracy",
                                 lm ? last_score : 100 * last_score, elapsed(), threads));
      }
      if (options.max_seconds > 0 && elapsed() > options.max_seconds && epoch < options.epochs) {
        if (progress) progress(absl::StrFormat("stopping after epoch %d: %.0f s time limit", epoch, options.max_seconds));
        break;
      }
    }
    net->eval();
    TransformerWeights weights = WeightsFromModule(net);
    SHRINK_RETURN_IF_ERROR(WriteTransformerCheckpoint(weights, out_dir));
    SHRINK_RETURN_IF_ERROR(tokenizer->Save(out_dir));
    std::vector<TokenBatch> test = Batches(*tokenizer, data.test, lm, std::min<int64_t>(kTextMaxLength, config.max_sequence()), kTrainBatch, pad);
    const double test_score = Score(net, test, lm);
    (lm ? report.validation_perplexity : report.validation_accuracy) = last_score;
    (lm ? report.test_perplexity : report.test_accuracy) = test_score;
    for (const auto& parameter : net->parameters()) report.params += parameter.numel();
    report.seconds = elapsed();
    return report;
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("training failed: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("training failed: ", e.what()));
  }
}

}  // namespace shrink::worker
