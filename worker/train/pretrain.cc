// The pretraining loop. Every step's randomness (masking, dropout) is seeded from (seed, step)
// and the data order from (seed, epoch), so a resumed run needs only the weights, the
// optimizer's moments and the step count to continue exactly where it stopped.
#include "worker/train/pretrain.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/files.h"
#include "common/status.h"
#include "worker/checkpoint/transformer_checkpoint.h"
#include "worker/data/pretrain_corpus.h"
#include "worker/nn/device.h"
#include "worker/nn/mlm_head.h"
#include "worker/nn/torch_device.h"
#include "worker/nn/transformer.h"
#include "worker/nn/transformer_build.h"
#include "worker/tokenizers/tokenizer.h"
#include "worker/tokenizers/vocab_learner.h"
#include "worker/train/mlm_masking.h"

namespace shrink::worker {
namespace {

using Json = nlohmann::ordered_json;

constexpr double kWeightDecay = 0.01;
constexpr double kWarmupFraction = 0.05;
constexpr double kClipNorm = 1.0;
constexpr double kProgressSeconds = 30;  // a progress line at least this often
constexpr uint64_t kValidationSeed = 0x5eed;

// splitmix64 of (a, b): independent streams per step and per epoch.
uint64_t Mix(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9e3779b97f4a7c15ULL + b + 0x632be59bd9b4e019ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string Minutes(double seconds) {
  return seconds < 90 ? absl::StrFormat("%.0f s", seconds) : absl::StrFormat("%.1f min", seconds / 60);
}

// Documents packed into rows of `length` ids. Encoders: [CLS] doc [SEP] doc [SEP] ... [SEP]
// (RoBERTa: <s> ... </s>); GPT-2: doc <eos> doc <eos> ... cut every `length` ids. The last
// partial row is dropped.
struct PackedRows {
  torch::Tensor ids;         // [rows, length] int64
  uint64_t fingerprint = 0;  // FNV-1a of every id: a resumed run must see the same rows
};

PackedRows Pack(const Tokenizer& tokenizer, const std::vector<std::string>& documents, bool lm, int64_t length,
                int64_t max_rows) {
  const SpecialTokens& s = tokenizer.Specials();
  const int64_t separator = lm ? s.eos : s.sep;
  const int64_t body = lm ? length : length - 2;
  std::vector<int64_t> flat, row;
  row.reserve(body);
  auto emit = [&] {
    if (!lm) flat.push_back(s.cls);
    flat.insert(flat.end(), row.begin(), row.end());
    if (!lm) flat.push_back(s.sep);
    row.clear();
  };
  for (const std::string& document : documents) {
    if (max_rows > 0 && static_cast<int64_t>(flat.size()) >= max_rows * length) break;
    std::vector<int64_t> ids = tokenizer.Encode(document);
    ids.push_back(separator);
    for (int64_t id : ids) {
      // An encoder row does not start with a separator: its [SEP] would follow [CLS].
      if (!lm && row.empty() && id == separator) continue;
      row.push_back(id);
      if (static_cast<int64_t>(row.size()) == body) emit();
    }
  }
  PackedRows packed;
  int64_t rows = static_cast<int64_t>(flat.size()) / length;
  if (max_rows > 0) rows = std::min(rows, max_rows);
  flat.resize(rows * length);
  packed.fingerprint = 0xcbf29ce484222325ULL;
  for (int64_t id : flat) packed.fingerprint = (packed.fingerprint ^ static_cast<uint64_t>(id)) * 0x100000001b3ULL;
  packed.ids = torch::from_blob(flat.data(), {rows, length}, torch::kLong).clone();
  return packed;
}

// The run's settings that a resumed run must share, as state.json records them.
Json RunIdentity(const PretrainCorpus& corpus, const PretrainOptions& o, int64_t total_steps, uint64_t fingerprint) {
  return Json{{"arch", o.arch},
              {"preset", o.preset},
              {"corpus", corpus.spec},
              {"vocab_size", o.vocab_size},
              {"vocab_documents", o.vocab_documents},
              {"max_length", o.max_length},
              {"batch_size", o.batch_size},
              {"learning_rate", o.learning_rate},
              {"total_steps", total_steps},
              {"seed", o.seed},
              {"training_rows_fingerprint", absl::StrFormat("%016x", fingerprint)}};
}

class Pretrainer {
 public:
  Pretrainer(const PretrainCorpus& corpus, const PretrainOptions& options, std::string out_dir,
             const std::function<void(const std::string&)>& progress)
      : corpus_(corpus), o_(options), out_(std::move(out_dir)), progress_(progress) {}

  absl::StatusOr<PretrainReport> Run();

 private:
  void Say(const std::string& line) const {
    if (progress_) progress_(line);
  }
  std::string StateDir() const { return absl::StrCat(out_, "/", kPretrainStateDir); }
  absl::Status MakeTokenizer();
  absl::Status BuildModel();
  // The batch as the model reads it (rows [B, T] on the CPU): MLM-masked inputs and labels
  // (encoders), or the rows and their next tokens (GPT-2); labels are -100 where nothing is predicted.
  MaskedBatch Targets(const torch::Tensor& rows, at::Generator& generator) const;
  // Summed cross-entropy over the predicted tokens of `inputs` / `labels` [b, T] (undefined when
  // none is predicted); adds their count to *predicted and, when given, the exact hits to *correct.
  torch::Tensor LossSum(const torch::Tensor& inputs, const torch::Tensor& labels, int64_t* predicted, int64_t* correct);
  // Validation loss and accuracy (encoders) over the validation rows, masking with a fixed seed.
  std::pair<double, double> Validate();
  absl::Status SaveState(int64_t step, const Json& identity);
  absl::StatusOr<int64_t> LoadState(const Json& identity);
  void SetLearningRate(int64_t step);

  const PretrainCorpus& corpus_;
  const PretrainOptions o_;
  const std::string out_;
  const std::function<void(const std::string&)>& progress_;
  bool lm_ = false;
  torch::Device device_{torch::kCPU};
  std::unique_ptr<Tokenizer> tokenizer_;
  TransformerConfig config_;
  Transformer net_{nullptr};
  MlmHead head_{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::vector<int64_t> special_ids_;
  PackedRows train_, validation_;
  int64_t total_steps_ = 0, warmup_ = 0;
  // Rows per forward pass: small enough that every activation stays under glibc's mmap threshold
  // (32 MiB), so freed buffers are reused rather than unmapped and page-faulted in again each step.
  int64_t micro_rows_ = 1;
  Json history_ = Json::array();
};

absl::Status Pretrainer::MakeTokenizer() {
  const std::string state = StateDir();
  if (o_.resume) {
    // The checkpointed vocabulary, not a new one: learning is deterministic, but loading is fast.
    SHRINK_ASSIGN_OR_RETURN(tokenizer_, LoadTokenizer(state));
    return absl::OkStatus();
  }
  std::vector<std::string> texts = corpus_.train;
  if (o_.vocab_documents > 0 && static_cast<int64_t>(texts.size()) > o_.vocab_documents) texts.resize(o_.vocab_documents);
  const auto start = std::chrono::steady_clock::now();
  const int size = static_cast<int>(o_.vocab_size);
  if (o_.arch == "bert") {
    SHRINK_ASSIGN_OR_RETURN(tokenizer_, BuildWordPieceTokenizer(texts, size, true));
  } else {
    SHRINK_ASSIGN_OR_RETURN(tokenizer_, BuildByteBpeTokenizer(texts, size, o_.arch == "roberta" ? ByteBpeSpecials::kRoberta
                                                                                                   : ByteBpeSpecials::kGpt2));
  }
  Say(absl::StrFormat("vocabulary: %d tokens learned on %d documents in %.1f s", tokenizer_->VocabSize(), texts.size(),
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()));
  return absl::OkStatus();
}

absl::Status Pretrainer::BuildModel() {
  SHRINK_ASSIGN_OR_RETURN(config_, TransformerPreset(o_.arch, o_.preset, tokenizer_->VocabSize(), 2));
  const SpecialTokens& s = tokenizer_->Specials();
  if (lm_) {
    config_.pad_token_id = s.eos;
    config_.original_json = absl::StrCat(R"({"bos_token_id": )", s.bos >= 0 ? s.bos : s.eos, R"(, "eos_token_id": )", s.eos, "}");
  } else {
    config_.pad_token_id = s.pad;
    for (int64_t id : {s.pad, s.unk, s.cls, s.sep, s.bos, s.eos, s.mask}) {
      if (id >= 0) special_ids_.push_back(id);
    }
  }
  torch::manual_seed(o_.seed);
  net_ = Transformer(config_);
  if (!lm_) head_ = MlmHead(config_);
  net_->to(device_);
  if (!lm_) head_->to(device_);
  std::vector<torch::Tensor> decay, no_decay;
  auto sort = [&](torch::nn::Module& module) {
    for (const auto& item : module.named_parameters()) (item.value().dim() >= 2 ? decay : no_decay).push_back(item.value());
  };
  sort(*net_);
  if (!lm_) sort(*head_);
  // RoBERTa's betas and epsilon, which pretraining with large rates needs.
  auto adamw = [&](double decay_rate) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(o_.learning_rate).betas({0.9, 0.98}).eps(1e-6).weight_decay(decay_rate));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, adamw(kWeightDecay));
  groups.emplace_back(no_decay, adamw(0));
  optimizer_ = std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(o_.learning_rate));
  return absl::OkStatus();
}

MaskedBatch Pretrainer::Targets(const torch::Tensor& rows, at::Generator& generator) const {
  if (!lm_) return MaskForMlm(rows, tokenizer_->Specials().mask, special_ids_, config_.vocab_size, generator);
  MaskedBatch batch;
  batch.inputs = rows;
  batch.labels = torch::full_like(rows, -100);
  const int64_t t = rows.size(1);
  batch.labels.narrow(1, 0, t - 1).copy_(rows.narrow(1, 1, t - 1));
  return batch;
}

torch::Tensor Pretrainer::LossSum(const torch::Tensor& inputs, const torch::Tensor& labels, int64_t* predicted,
                                  int64_t* correct) {
  const torch::Tensor ids = inputs.to(device_), targets = labels.to(device_);
  const torch::Tensor mask = torch::ones_like(ids);
  const torch::Tensor chosen = targets.ne(-100);
  const int64_t n = chosen.sum().item<int64_t>();
  if (n == 0) return torch::Tensor();
  torch::Tensor logits, wanted;
  if (lm_) {
    logits = net_->forward(ids, mask).reshape({-1, config_.vocab_size});
    wanted = targets.reshape({-1});
  } else {
    // The head only where a token is to be predicted: a sixth of the positions, most of the cost.
    logits = head_(net_->Encode(ids, mask).index({chosen}), net_->word->weight);
    wanted = targets.index({chosen});
  }
  *predicted += n;
  if (correct != nullptr) *correct += logits.argmax(1).eq(wanted).logical_and(wanted.ne(-100)).sum().item<int64_t>();
  return torch::nn::functional::cross_entropy(
      logits, wanted, torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum));
}

std::pair<double, double> Pretrainer::Validate() {
  torch::NoGradGuard no_grad;
  net_->eval();
  if (!lm_) head_->eval();
  at::Generator generator = at::detail::createCPUGenerator(Mix(o_.seed, kValidationSeed));
  double loss_sum = 0;
  int64_t predicted = 0, correct = 0;
  const int64_t rows = validation_.ids.size(0);
  for (int64_t i = 0; i < rows; i += o_.batch_size) {
    const int64_t b = std::min<int64_t>(o_.batch_size, rows - i);
    MaskedBatch batch = Targets(validation_.ids.narrow(0, i, b), generator);
    for (int64_t j = 0; j < b; j += micro_rows_) {
      const int64_t m = std::min(micro_rows_, b - j);
      torch::Tensor sum = LossSum(batch.inputs.narrow(0, j, m), batch.labels.narrow(0, j, m), &predicted, &correct);
      if (sum.defined()) loss_sum += sum.item<double>();
    }
  }
  net_->train();
  if (!lm_) head_->train();
  const double loss = predicted > 0 ? loss_sum / static_cast<double>(predicted) : 0;
  return {loss, predicted > 0 ? static_cast<double>(correct) / static_cast<double>(predicted) : 0};
}

void Pretrainer::SetLearningRate(int64_t step) {
  const double scale = step < warmup_ ? static_cast<double>(step + 1) / static_cast<double>(warmup_)
                                      : std::max(0.0, static_cast<double>(total_steps_ - step) /
                                                          static_cast<double>(std::max<int64_t>(1, total_steps_ - warmup_)));
  for (auto& group : optimizer_->param_groups()) {
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(o_.learning_rate * scale);
  }
}

absl::Status Pretrainer::SaveState(int64_t step, const Json& identity) {
  // Written beside the live state, then swapped in, so a crash leaves one complete state.
  const std::string dir = StateDir(), fresh = dir + ".new", old = dir + ".old";
  RemoveAll(fresh);
  SHRINK_RETURN_IF_ERROR(MakeDirs(fresh));
  try {
    torch::serialize::OutputArchive model;
    net_->save(model);
    model.save_to(fresh + "/model.pt");
    if (!lm_) {
      torch::serialize::OutputArchive head;
      head_->save(head);
      head.save_to(fresh + "/head.pt");
    }
    torch::serialize::OutputArchive optimizer;
    optimizer_->save(optimizer);
    optimizer.save_to(fresh + "/optimizer.pt");
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("writing the pretraining state in ", fresh, ": ", e.what_without_backtrace()));
  }
  SHRINK_RETURN_IF_ERROR(tokenizer_->Save(fresh));
  Json state = identity;
  state["step"] = step;
  state["history"] = history_;
  SHRINK_RETURN_IF_ERROR(WriteFileAtomic(fresh + "/state.json", state.dump(2) + "\n"));
  RemoveAll(old);
  if (PathExists(dir) && std::rename(dir.c_str(), old.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot move ", dir, " aside"));
  }
  if (std::rename(fresh.c_str(), dir.c_str()) != 0) return absl::InternalError(absl::StrCat("cannot rename ", fresh, " to ", dir));
  RemoveAll(old);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Pretrainer::LoadState(const Json& identity) {
  const std::string dir = StateDir(), path = dir + "/state.json";
  SHRINK_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  Json state = Json::parse(text, nullptr, false);
  if (state.is_discarded() || !state.is_object() || !state.contains("step") || !state["step"].is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a pretraining state (no integer \"step\")"));
  }
  for (const auto& [key, value] : identity.items()) {
    if (!state.contains(key) || state[key] != value) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--resume: ", key, " is ", value.dump(), " now but ", state.contains(key) ? state[key].dump() : "absent",
          " in the checkpointed run (", path, "); resume with the same options and corpus"));
    }
  }
  try {
    torch::serialize::InputArchive model;
    model.load_from(dir + "/model.pt", device_);
    net_->load(model);
    if (!lm_) {
      torch::serialize::InputArchive head;
      head.load_from(dir + "/head.pt", device_);
      head_->load(head);
    }
    torch::serialize::InputArchive optimizer;
    optimizer.load_from(dir + "/optimizer.pt", device_);
    optimizer_->load(optimizer);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat(dir, ": the checkpoint cannot be read: ", e.what_without_backtrace()));
  }
  if (state.contains("history")) history_ = state["history"];
  return state["step"].get<int64_t>();
}

absl::StatusOr<PretrainReport> Pretrainer::Run() {
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  if (o_.arch != "bert" && o_.arch != "roberta" && o_.arch != "gpt2") {
    return absl::InvalidArgumentError(absl::StrCat("arch ", o_.arch, " is not one of bert, roberta, gpt2"));
  }
  if (o_.batch_size < 1 || o_.micro_batch < 0 || o_.max_length < 8 || !(o_.learning_rate > 0) || o_.steps < 0 || o_.tokens < 0 ||
      (o_.steps == 0 && o_.tokens == 0) || o_.pause_after < 0 || o_.evaluations < 1 || o_.validation_rows < 1 ||
      o_.vocab_documents < 0) {
    return absl::InvalidArgumentError(
        "pretraining options: batch_size, evaluations, validation_rows and learning_rate must be positive, "
        "max_length >= 8, steps or tokens > 0, micro_batch, pause_after and vocab_documents >= 0");
  }
  if (corpus_.train.empty() || corpus_.validation.empty()) {
    return absl::InvalidArgumentError("the corpus needs training and validation documents");
  }
  lm_ = o_.arch == "gpt2";
  SHRINK_ASSIGN_OR_RETURN(const TransformerConfig shape, TransformerPreset(o_.arch, o_.preset, 0, 2));
  if (o_.max_length > shape.max_sequence()) {
    return absl::InvalidArgumentError(absl::StrCat("max_length ", o_.max_length, " is longer than the ", o_.preset,
                                                   " preset's ", shape.max_sequence(), " positions"));
  }
  SHRINK_ASSIGN_OR_RETURN(device_, ParseDevice(o_.device));
  if (o_.resume && !PathExists(StateDir() + "/state.json")) {
    return absl::NotFoundError(absl::StrCat("--resume: ", out_, " has no pretraining checkpoint (", kPretrainStateDir, "/state.json)"));
  }
  if (!o_.resume && PathExists(StateDir())) {
    return absl::AlreadyExistsError(absl::StrCat(out_, " holds an unfinished pretraining run (", kPretrainStateDir,
                                                 "/): pass --resume to continue it, or choose another --out"));
  }
  try {
    const int threads = ConfigureTorch(o_.threads);
    RetainFreedMemory();
    SHRINK_RETURN_IF_ERROR(MakeTokenizer());
    train_ = Pack(*tokenizer_, corpus_.train, lm_, o_.max_length, 0);
    validation_ = Pack(*tokenizer_, corpus_.validation, lm_, o_.max_length, o_.validation_rows);
    const int64_t rows = train_.ids.size(0);
    if (rows < o_.batch_size || validation_.ids.size(0) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("corpus ", corpus_.spec, " packs into ", rows, " training and ",
                                                     validation_.ids.size(0), " validation rows of ", o_.max_length,
                                                     " tokens; a batch needs ", o_.batch_size));
    }
    const int64_t per_step = int64_t{o_.batch_size} * o_.max_length;
    total_steps_ = o_.steps > 0 ? o_.steps : std::max<int64_t>(1, (o_.tokens + per_step - 1) / per_step);
    warmup_ = std::max<int64_t>(1, static_cast<int64_t>(kWarmupFraction * static_cast<double>(total_steps_)));
    const int64_t steps_per_epoch = rows / o_.batch_size;
    SHRINK_RETURN_IF_ERROR(BuildModel());
    {
      const int64_t widest = std::max({config_.intermediate, config_.num_heads * int64_t{o_.max_length},
                                       lm_ ? config_.vocab_size : config_.vocab_size / 5});  // ~15% of rows masked
      const int64_t row_bytes = 4 * int64_t{o_.max_length} * widest;
      micro_rows_ = o_.micro_batch > 0 ? std::min(o_.micro_batch, o_.batch_size)
                                       : std::clamp<int64_t>((int64_t{32} << 20) / row_bytes, 1, o_.batch_size);
    }
    const Json identity = RunIdentity(corpus_, o_, total_steps_, train_.fingerprint);
    int64_t step = 0;
    if (o_.resume) {
      SHRINK_ASSIGN_OR_RETURN(step, LoadState(identity));
    }
    int64_t params = 0;
    for (const auto& p : net_->parameters()) params += p.numel();
    if (!lm_) params += head_->dense->weight.numel() + head_->dense->bias.numel() + 2 * config_.hidden + config_.vocab_size;
    Say(absl::StrFormat("%s %s, %d parameters, on %s with %d threads: %d training rows of %d tokens (%.2f M tokens), "
                        "%d validation rows",
                        o_.arch, o_.preset, params, DeviceName(device_), threads, rows, o_.max_length,
                        static_cast<double>(rows * o_.max_length) / 1e6, validation_.ids.size(0)));
    Say(absl::StrFormat("%d steps x %d rows (%d per pass) x %d tokens = %.1f M tokens (%.2f epochs), peak learning rate %g%s",
                        total_steps_, o_.batch_size, micro_rows_, o_.max_length, static_cast<double>(total_steps_ * per_step) / 1e6,
                        static_cast<double>(total_steps_) / static_cast<double>(steps_per_epoch), o_.learning_rate,
                        step > 0 ? absl::StrCat("; resuming at step ", step) : ""));
    auto record = [&](int64_t at_step, double train_loss) {
      auto [loss, accuracy] = Validate();
      Json entry{{"step", at_step}, {"tokens", at_step * per_step}};
      if (at_step > 0) entry["train_loss"] = train_loss;
      entry["validation_loss"] = loss;
      if (lm_) {
        entry["validation_perplexity"] = std::exp(loss);
      } else {
        entry["validation_accuracy"] = accuracy;
      }
      history_.push_back(entry);
      Say(lm_ ? absl::StrFormat("validation at step %d: loss %.4f, perplexity %.2f", at_step, loss, std::exp(loss))
              : absl::StrFormat("validation at step %d: masked-token loss %.4f, accuracy %.2f%%", at_step, loss, 100 * accuracy));
    };
    if (step == 0) record(0, 0);
    const int64_t eval_every = std::max<int64_t>(1, total_steps_ / o_.evaluations);
    const int64_t stop = o_.pause_after > 0 ? std::min(total_steps_, o_.pause_after) : total_steps_;
    const int64_t first_step = step;
    std::vector<int64_t> order;
    int64_t order_epoch = -1;
    double loss_sum = 0;
    int64_t loss_count = 0;
    double train_seconds = 0;  // in steps only: validation and checkpoints are not throughput
    double last_line = elapsed(), last_checkpoint = last_line;
    net_->train();
    if (!lm_) head_->train();
    for (; step < stop; ++step) {
      const double step_start = elapsed();
      const int64_t epoch = step / steps_per_epoch;
      if (epoch != order_epoch) {
        order.resize(rows);
        for (int64_t i = 0; i < rows; ++i) order[i] = i;
        std::mt19937_64 rng(Mix(o_.seed, static_cast<uint64_t>(epoch)));
        for (int64_t i = rows; i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
        order_epoch = epoch;
      }
      const int64_t first = (step % steps_per_epoch) * o_.batch_size;
      const torch::Tensor index = torch::from_blob(order.data() + first, {o_.batch_size}, torch::kLong).clone();
      const torch::Tensor batch = train_.ids.index_select(0, index);
      const uint64_t step_seed = Mix(o_.seed ^ 0x7072657472ULL, static_cast<uint64_t>(step));
      torch::manual_seed(step_seed);  // dropout
      at::Generator generator = at::detail::createCPUGenerator(Mix(step_seed, 1));
      SetLearningRate(step);
      optimizer_->zero_grad();
      // One gradient over the whole batch, accumulated over micro-batches of whole rows.
      const MaskedBatch targets = Targets(batch, generator);
      const double total = targets.labels.ne(-100).sum().item<double>();
      double loss_value = 0;
      int64_t predicted = 0;
      for (int64_t j = 0; j < o_.batch_size; j += micro_rows_) {
        const int64_t m = std::min<int64_t>(micro_rows_, o_.batch_size - j);
        torch::Tensor sum = LossSum(targets.inputs.narrow(0, j, m), targets.labels.narrow(0, j, m), &predicted, nullptr);
        if (!sum.defined()) continue;
        (sum / total).backward();
        loss_value += sum.item<double>() / total;
      }
      std::vector<torch::Tensor> parameters = net_->parameters();
      if (!lm_) {
        for (const auto& p : head_->parameters()) parameters.push_back(p);
      }
      torch::nn::utils::clip_grad_norm_(parameters, kClipNorm);
      optimizer_->step();
      loss_sum += loss_value;
      ++loss_count;
      const int64_t done = step + 1;
      const double now = elapsed();
      train_seconds += now - step_start;
      if (now - last_line >= kProgressSeconds || done == stop) {
        const double rate = static_cast<double>((done - first_step) * per_step) / std::max(1e-9, train_seconds);
        Say(absl::StrFormat("step %d/%d (%.1f%%): loss %.4f, %.0f tokens/s, %s elapsed, ETA %s", done, total_steps_,
                            100.0 * static_cast<double>(done) / static_cast<double>(total_steps_), loss_value, rate,
                            Minutes(now), Minutes(static_cast<double>((total_steps_ - done) * per_step) / rate)));
        last_line = now;
      }
      if (done % eval_every == 0 || done == total_steps_) {
        record(done, loss_sum / static_cast<double>(std::max<int64_t>(1, loss_count)));
        loss_sum = 0;
        loss_count = 0;
      }
      if (done < total_steps_ && (done == stop || elapsed() - last_checkpoint >= 60 * o_.checkpoint_minutes)) {
        SHRINK_RETURN_IF_ERROR(SaveState(done, identity));
        last_checkpoint = elapsed();
        if (done == stop) Say(absl::StrFormat("paused after step %d; continue with --resume", done));
      }
    }
    PretrainReport report;
    report.steps_done = step;
    report.total_steps = total_steps_;
    report.finished = step == total_steps_;
    report.tokens_seen = step * per_step;
    report.train_tokens = train_.ids.numel();
    report.validation_tokens = validation_.ids.numel();
    report.vocab_size = tokenizer_->VocabSize();
    report.params = params;
    report.seconds = elapsed();
    report.tokens_per_second = static_cast<double>((step - first_step) * per_step) / std::max(1e-9, train_seconds);
    if (!history_.empty()) {
      const Json& last = history_.back();
      report.validation_loss = last["validation_loss"].get<double>();
      if (lm_) {
        report.validation_perplexity = last["validation_perplexity"].get<double>();
      } else {
        report.validation_accuracy = last["validation_accuracy"].get<double>();
      }
    }
    if (!report.finished) return report;

    net_->to(torch::kCPU);
    net_->eval();
    std::map<std::string, torch::Tensor> head;
    if (!lm_) head = MlmHeadTensors(head_, config_.family);
    SHRINK_RETURN_IF_ERROR(WritePretrainingCheckpoint(WeightsFromModule(net_), head, out_));
    SHRINK_RETURN_IF_ERROR(tokenizer_->Save(out_));
    Json sources = Json::array();
    for (const CorpusSourceStats& s : corpus_.sources) {
      sources.push_back({{"name", s.name}, {"documents", s.documents}, {"chars", s.chars},
                         {"duplicates_dropped", s.duplicates}, {"held_out_task_texts_dropped", s.held_out}});
    }
    Json out = RunIdentity(corpus_, o_, total_steps_, train_.fingerprint);
    out["objective"] = lm_ ? "causal language modelling" : "masked language modelling (15%: 80% mask, 10% random, 10% kept)";
    out["corpus_sources"] = sources;
    out["train_documents"] = corpus_.train.size();
    out["validation_documents"] = corpus_.validation.size();
    out["train_tokens"] = report.train_tokens;
    out["validation_tokens"] = report.validation_tokens;
    out["tokens_seen"] = report.tokens_seen;
    out["epochs"] = static_cast<double>(report.tokens_seen) / static_cast<double>(report.train_tokens);
    out["vocab_learned"] = report.vocab_size;
    out["parameters"] = params;
    out["device"] = DeviceName(device_);
    out["threads"] = threads;
    out["seconds_last_invocation"] = report.seconds;
    out["tokens_per_second_last_invocation"] = report.tokens_per_second;
    out["history"] = history_;
    SHRINK_RETURN_IF_ERROR(WriteFileAtomic(absl::StrCat(out_, "/", kPretrainRecordFile), out.dump(2) + "\n"));
    RemoveAll(StateDir());
    return report;
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("pretraining failed: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("pretraining failed: ", e.what()));
  }
}

}  // namespace

absl::StatusOr<PretrainReport> Pretrain(const PretrainCorpus& corpus, const PretrainOptions& options,
                                        const std::string& out_dir,
                                        const std::function<void(const std::string&)>& progress) {
  return Pretrainer(corpus, options, out_dir, progress).Run();
}

}  // namespace shrink::worker
