// Commands that work on local files without a coordinator: train, eval, init, apply,
// and the end-to-end demo (which runs embedded).
#include <cstdlib>
#include <iostream>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "client/local/commands.h"
#include "client/local/embedded.h"
#include "client/remote/command_util.h"
#include "client/remote/coordinator_client.h"
#include "client/remote/report.h"
#include "common/files.h"
#include "common/policy.h"
#include "common/status.h"
#include "common/task_files.h"
#include "worker/export/export_model.h"
#include "worker/model/model.h"
#include "worker/predict/predict.h"
#include "worker/data/task_data.h"
#include "worker/service/task_runner.h"
#include "worker/eval/evaluate.h"
#include "worker/train/train.h"
#include "worker/eval/compare.h"

namespace shrink::client::local {
namespace {

const FlagSpec kHelpFlag = {"help", "show this help", "", true};

// ~/.cache/shrink, or $SHRINK_CACHE.
std::string DefaultCacheDir() {
  if (const char* env = std::getenv("SHRINK_CACHE")) return env;
  if (const char* home = std::getenv("HOME")) return absl::StrCat(home, "/.cache/shrink");
  return "/tmp/shrink-cache";
}

// The data of a task spec on this machine (built-in name or a user's file).
absl::StatusOr<worker::TaskData> LoadLocalTask(const std::string& task) {
  SHRINK_ASSIGN_OR_RETURN(auto files, LocalTaskFiles(task));
  return worker::LoadTaskData(task, files);
}

// The task a command measures on: --task, or for the CNN its own data set; "none" or no
// task for a transformer = synthetic input only (bytes, parameters, latency).
absl::StatusOr<worker::TaskData> TaskFor(const std::string& flag, const worker::Model& model) {
  if (flag == "none") return worker::TaskData();
  if (flag.empty()) {
    if (model.ModelType() == "shrink-cnn") return LoadLocalTask("fashion-mnist");
    return worker::TaskData();
  }
  return LoadLocalTask(flag);
}

// Trains the reference CNN into `out_dir`, printing progress to stderr.
absl::StatusOr<worker::TrainReport> Train(const worker::TrainOptions& options, const std::string& out_dir) {
  SHRINK_ASSIGN_OR_RETURN(auto data, LoadLocalTask("fashion-mnist"));
  return worker::TrainCnn(*data.images, options, out_dir,
                          [](const std::string& line) { std::cerr << "  " << line << "\n"; });
}

// Eval options from the shared --threads / --latency-batch / --seq-len flags.
absl::StatusOr<worker::EvalOptions> EvalOptionsFrom(const Args& args) {
  worker::EvalOptions options;
  SHRINK_ASSIGN_OR_RETURN(int64_t threads, args.GetInt("threads"));
  SHRINK_ASSIGN_OR_RETURN(int64_t batch, args.GetInt("latency-batch"));
  SHRINK_ASSIGN_OR_RETURN(int64_t length, args.GetInt("seq-len"));
  options.threads = static_cast<int>(threads);
  if (batch > 0) {
    options.latency_batch = static_cast<int>(batch);
    options.text_latency_batch = static_cast<int>(batch);
  }
  options.sequence_length = static_cast<int>(length);
  return options;
}

const FlagSpec kLatencyBatchFlag = {"latency-batch", "examples per timed forward pass (0 = 32 images / 8 sequences)", "0"};
const FlagSpec kSeqLenFlag = {"seq-len", "tokens per synthetic sequence for transformer latency", "128"};

}  // namespace

int RunTrain(int argc, char** argv) {
  const std::vector<FlagSpec> flags = {
      {"arch", "architecture: cnn | bert | gpt2", "cnn"},
      {"data", "training data: fashion-mnist (cnn), fortunes-topic, wordnet-lexname or a JSONL/TSV file (bert), fortunes-lm or a .txt file (gpt2)", ""},
      {"out", "folder for config.json + model.safetensors (+ tokenizer files) (required)", ""},
      {"epochs", "passes over the training split (default: cnn 3, bert 4, gpt2 2)", "0"},
      {"preset", "transformer shape: reference (4 layers, hidden 256), deep (bert: 8 layers, hidden 256), tiny", "reference"},
      {"vocab-size", "transformer vocabulary built from the training split", "8000"},
      {"init", "transformers: fine-tune this uncompressed model folder (its shape, weights and tokenizer; a new classification head) instead of training from scratch", ""},
      {"learning-rate", "peak learning rate (0 = cnn 1e-3, bert 2e-4, gpt2 5e-4; with --init 1e-4)", "0"},
      {"seed", "random seed (training is deterministic for a seed and thread count)", "0"},
      {"threads", "intra-op threads (0 = all cores)", "0"},
      {"max-examples", "train on the first N examples only (0 = all)", "0"},
      {"max-seconds", "transformers: stop after the epoch that passes this (0 = no limit)", "0"},
      kHelpFlag,
  };
  const std::string synopsis =
      "shrink train --arch cnn|bert|gpt2 --data fashion-mnist|fortunes-topic|fortunes-lm|wordnet-lexname|FILE --out DIR [--init DIR] [--epochs N] [--seed S]";
  SHRINK_PARSE_OR_EXIT(args, argc, argv, flags, synopsis);
  if (args->Get("out").empty()) return UsageError(absl::InvalidArgumentError("--out is required"), synopsis, flags);
  const std::string arch = args->Get("arch");
  if (arch != "cnn" && arch != "bert" && arch != "gpt2") {
    return UsageError(absl::InvalidArgumentError(absl::StrCat("--arch ", arch, " is not one of cnn, bert, gpt2")),
                      synopsis, flags);
  }
  std::string data_name = args->Get("data");
  if (data_name.empty()) data_name = arch == "cnn" ? "fashion-mnist" : arch == "bert" ? "fortunes-topic" : "fortunes-lm";
  if (arch == "cnn" && data_name != "fashion-mnist") {
    return UsageError(absl::InvalidArgumentError("--data: the cnn trains on fashion-mnist"), synopsis, flags);
  }
  worker::TrainOptions options;
  auto epochs = args->GetInt("epochs"), seed = args->GetInt("seed"), threads = args->GetInt("threads"),
       max_examples = args->GetInt("max-examples"), vocab = args->GetInt("vocab-size");
  for (const auto* v : {&epochs, &seed, &threads, &max_examples, &vocab}) {
    if (!v->ok()) return UsageError(v->status(), synopsis, flags);
  }
  auto learning_rate = args->GetDouble("learning-rate"), max_seconds = args->GetDouble("max-seconds");
  if (!learning_rate.ok()) return UsageError(learning_rate.status(), synopsis, flags);
  if (!max_seconds.ok()) return UsageError(max_seconds.status(), synopsis, flags);
  options.epochs = *epochs > 0 ? static_cast<int>(*epochs) : (arch == "cnn" ? 3 : arch == "bert" ? 4 : 2);
  options.seed = static_cast<uint64_t>(*seed);
  options.threads = static_cast<int>(*threads);
  options.max_train_examples = *max_examples;
  options.vocab_size = *vocab;
  options.preset = args->Get("preset");
  options.init_dir = args->Get("init");
  if (arch == "cnn" && !options.init_dir.empty()) {
    return UsageError(absl::InvalidArgumentError("--init: only transformers fine-tune (--arch bert or gpt2)"), synopsis, flags);
  }
  options.max_seconds = *max_seconds;
  if (*learning_rate > 0) {
    options.learning_rate = *learning_rate;
  } else if (!options.init_dir.empty()) {
    options.learning_rate = 1e-4;  // fine-tuning: small steps keep what pretraining learned
  } else if (arch != "cnn") {
    options.learning_rate = arch == "bert" ? 2e-4 : 5e-4;  // post-LN BERT from scratch stalls at 5e-4 (BENCHMARKS)
  }
  if (*epochs < 0) return UsageError(absl::InvalidArgumentError("--epochs must be >= 1"), synopsis, flags);
  if (arch == "cnn") {
    auto report = Train(options, args->Get("out"));
    if (!report.ok()) return Failure(report.status());
    std::cout << absl::StrFormat("trained cnn in %.0f s: %d parameters, validation accuracy %.2f%%, test accuracy %.2f%%\n",
                                 report->seconds, report->params, 100 * report->validation_accuracy,
                                 100 * report->test_accuracy);
    std::cout << "saved to " << args->Get("out") << "\n";
    return 0;
  }
  auto data = LoadLocalTask(data_name);
  if (!data.ok()) return Failure(data.status());
  if (!data->text) return UsageError(absl::InvalidArgumentError(absl::StrCat("--data ", data_name, " is not text")), synopsis, flags);
  options.batch_size = 32;
  auto report = worker::TrainTransformer(arch, *data->text, options, args->Get("out"),
                                         [](const std::string& line) { std::cerr << "  " << line << "\n"; });
  if (!report.ok()) return Failure(report.status());
  if (arch == "gpt2") {
    std::cout << absl::StrFormat(
        "trained gpt2 on %s in %.0f s (%d epochs): %d parameters, validation perplexity %.2f, test perplexity %.2f\n",
        data_name, report->seconds, report->epochs, report->params, report->validation_perplexity, report->test_perplexity);
  } else {
    std::cout << absl::StrFormat(
        "trained bert on %s in %.0f s (%d epochs): %d parameters, validation accuracy %.2f%%, test accuracy %.2f%%\n",
        data_name, report->seconds, report->epochs, report->params, 100 * report->validation_accuracy,
        100 * report->test_accuracy);
  }
  std::cout << "saved to " << args->Get("out") << "\n";
  return 0;
}

int RunEval(int argc, char** argv) {
  const std::vector<FlagSpec> flags = {
      {"model", "model folder (required)", ""},
      {"task", "fashion-mnist | fortunes-topic | fortunes-lm | wordnet-lexname | FILE | none (default: fashion-mnist for the cnn, none for transformers)", ""},
      {"split", "validation | test", "test"},
      {"threads", "intra-op threads (0 = all cores)", "0"},
      kLatencyBatchFlag,
      kSeqLenFlag,
      {"runs", "timed forward passes (latency = their median)", "15"},
      {"json", "print JSON", "", true},
      kHelpFlag,
  };
  const std::string synopsis = "shrink eval --model DIR [--task SPEC] [--json]";
  SHRINK_PARSE_OR_EXIT(args, argc, argv, flags, synopsis);
  if (args->Get("model").empty()) return UsageError(absl::InvalidArgumentError("--model is required"), synopsis, flags);
  auto options = EvalOptionsFrom(*args);
  if (!options.ok()) return UsageError(options.status(), synopsis, flags);
  auto runs = args->GetInt("runs");
  if (!runs.ok() || *runs < 1) return UsageError(absl::InvalidArgumentError("--runs must be an integer >= 1"), synopsis, flags);
  options->timed_runs = static_cast<int>(*runs);
  auto model = worker::Model::Load(args->Get("model"));
  if (!model.ok()) return Failure(model.status());
  auto data = TaskFor(args->Get("task"), **model);
  if (!data.ok()) return Failure(data.status());
  auto m = Evaluate(**model, *data, args->Get("split"), *options);
  if (!m.ok()) return Failure(m.status());
  const bool lm = m->perplexity() > 0;
  if (args->GetBool("json")) {
    nlohmann::json j = {{"model_type", (*model)->ModelType()}, {"bytes", m->bytes()}, {"params", m->params()},
                        {"latency_ms", m->latency_ms()}, {"latency_batch", m->latency_batch()},
                        {"threads", m->threads()}, {"flops", m->flops()}};
    if (!data->empty()) {
      j["task"] = data->name;
      j["split"] = m->split();
      j["examples"] = m->examples();
      if (lm) {
        j["perplexity"] = m->perplexity();
      } else {
        j["accuracy"] = m->accuracy();
      }
    }
    std::cout << j.dump(2) << "\n";
  } else {
    std::string quality;
    if (!data->empty()) {
      quality = lm ? absl::StrFormat("perplexity %.3f", m->perplexity()) : absl::StrFormat("accuracy %.2f%%", 100 * m->accuracy());
      quality = absl::StrFormat("%s on %d %s examples of %s, ", quality, m->examples(), m->split(), data->name);
    }
    std::cout << absl::StrFormat(
        "%s (%s): %s%d bytes, %d parameters, latency %.3f ms (median, batch %d, %d thread(s))\n", args->Get("model"),
        (*model)->ModelType(), quality, m->bytes(), m->params(), m->latency_ms(), m->latency_batch(), m->threads());
  }
  return 0;
}

int RunExport(int argc, char** argv) {
  const std::vector<FlagSpec> flags = {
      {"model", "model folder (required): any model Shrink loads, uncompressed or compressed", ""},
      {"out", "new folder for model.onnx, export.json and the tokenizer files (required)", ""},
      {"low-bit-kernel", "4..7-bit layers: int8 (Shrink's own kernels, weights requantized at load) | nbits (MatMulNBits on the packed codes)", "int8"},
      {"accuracy-level", "with --low-bit-kernel nbits, 4-bit layers: 4 = int8 activations, fast; 0 = fp32 activations, exact", "4"},
      {"json", "print export.json", "", true},
      kHelpFlag,
  };
  const std::string synopsis =
      "shrink export --model DIR --out DIR [--low-bit-kernel int8|nbits] [--accuracy-level 0|4] [--json]";
  SHRINK_PARSE_OR_EXIT(args, argc, argv, flags, synopsis);
  for (const char* required : {"model", "out"}) {
    if (args->Get(required).empty()) {
      return UsageError(absl::InvalidArgumentError(absl::StrCat("--", required, " is required")), synopsis, flags);
    }
  }
  worker::ExportOptions options;
  auto level = args->GetInt("accuracy-level");
  if (!level.ok() || (*level != 0 && *level != 4)) {
    return UsageError(absl::InvalidArgumentError("--accuracy-level must be 0 or 4"), synopsis, flags);
  }
  options.nbits_accuracy_level = *level;
  const std::string kernel = args->Get("low-bit-kernel");
  if (kernel != "int8" && kernel != "nbits") {
    return UsageError(absl::InvalidArgumentError("--low-bit-kernel must be int8 or nbits"), synopsis, flags);
  }
  options.low_bit_kernel = kernel == "int8" ? worker::LowBitKernel::kInt8 : worker::LowBitKernel::kMatMulNBits;
  auto model = worker::Model::Load(args->Get("model"));
  if (!model.ok()) return Failure(model.status());
  auto result = worker::ExportModel(**model, args->Get("out"), options);
  if (!result.ok()) return Failure(absl::Status(result.status().code(), absl::StrCat(args->Get("model"), ": ", result.status().message())));
  if (args->GetBool("json")) {
    std::cout << result->manifest_json;
  } else {
    std::cout << absl::StrFormat("exported %s (%s) to %s/%s: %d bytes\n", args->Get("model"), (*model)->ModelType(),
                                 args->Get("out"), worker::kOnnxFile, result->onnx_bytes);
  }
  return 0;
}

namespace {

// The texts of a JSONL file (each line an object with "text") or, failing JSON, its lines.
absl::StatusOr<std::vector<std::string>> ReadTexts(const std::string& path) {
  SHRINK_ASSIGN_OR_RETURN(std::string contents, ReadFile(path));
  std::vector<std::string> texts;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    ++line_number;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    if (line.front() != '{') {
      texts.emplace_back(line);
      continue;
    }
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_number, ": expected a JSON object with a \"text\" string"));
    }
    texts.push_back(j["text"].get<std::string>());
  }
  return texts;
}

// True when `path` holds an idx image file (gzip or raw), as Fashion-MNIST ships them.
bool IsIdxImages(const std::string& path) {
  auto bytes = ReadFile(path);
  if (!bytes.ok() || bytes->size() < 4) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes->data());
  return (p[0] == 0x1f && p[1] == 0x8b) || (p[0] == 0 && p[1] == 0 && p[2] == 8 && p[3] == 3);
}

}  // namespace

int RunPredict(int argc, char** argv) {
  const std::vector<FlagSpec> flags = {
      {"model", "model folder (required): Shrink's files, an export folder, or a fetched artifact", ""},
      {"text", "one text to classify or continue", ""},
      {"input", "a JSONL file of {\"text\": ...} lines (or plain lines), or an idx image file for the CNN", ""},
      {"runtime", "libtorch | onnxruntime", "libtorch"},
      {"max-new-tokens", "language models: tokens generated greedily", "32"},
      {"top", "classifiers: labels listed per input", "3"},
      {"limit", "images: the first N (0 = all)", "10"},
      {"threads", "intra-op threads", "1"},
      {"json", "print JSON", "", true},
      kHelpFlag,
  };
  const std::string synopsis =
      "shrink predict --model DIR (--text S | --input FILE) [--runtime libtorch|onnxruntime] [--max-new-tokens N] [--json]";
  SHRINK_PARSE_OR_EXIT(args, argc, argv, flags, synopsis);
  if (args->Get("model").empty()) return UsageError(absl::InvalidArgumentError("--model is required"), synopsis, flags);
  if (args->Get("text").empty() == args->Get("input").empty()) {
    return UsageError(absl::InvalidArgumentError("give exactly one of --text and --input"), synopsis, flags);
  }
  auto runtime = worker::ParsePredictRuntime(args->Get("runtime"));
  if (!runtime.ok()) return UsageError(runtime.status(), synopsis, flags);
  worker::PredictOptions options;
  options.runtime = *runtime;
  auto tokens = args->GetInt("max-new-tokens");
  auto top = args->GetInt("top");
  auto limit = args->GetInt("limit");
  auto threads = args->GetInt("threads");
  if (!tokens.ok() || *tokens < 1 || !top.ok() || *top < 1 || !limit.ok() || *limit < 0 || !threads.ok() || *threads < 1) {
    return UsageError(absl::InvalidArgumentError("--max-new-tokens, --top and --threads must be integers >= 1, --limit >= 0"),
                      synopsis, flags);
  }
  options.max_new_tokens = *tokens;
  options.top_labels = *top;
  options.threads = static_cast<int>(*threads);
  absl::StatusOr<std::vector<worker::Prediction>> predictions;
  const std::string input = args->Get("input");
  if (!input.empty() && !PathExists(input)) return Failure(absl::NotFoundError(absl::StrCat(input, ": no such file")));
  if (!input.empty() && IsIdxImages(input)) {
    predictions = worker::PredictImages(args->Get("model"), input, *limit, options);
  } else {
    std::vector<std::string> texts;
    if (input.empty()) {
      texts.push_back(args->Get("text"));
    } else {
      auto read = ReadTexts(input);
      if (!read.ok()) return Failure(read.status());
      texts = std::move(*read);
    }
    predictions = worker::PredictTexts(args->Get("model"), texts, options);
  }
  if (!predictions.ok()) return Failure(predictions.status());
  nlohmann::json all = nlohmann::json::array();
  for (const auto& p : *predictions) {
    nlohmann::json j = {{"input", p.input}};
    if (!p.labels.empty()) {
      j["labels"] = nlohmann::json::array();
      for (const auto& [label, probability] : p.labels) j["labels"].push_back({{"label", label}, {"probability", probability}});
    } else {
      j["generated"] = p.generated;
      j["generated_ids"] = p.generated_ids;
    }
    if (args->GetBool("json")) {
      all.push_back(j);
      continue;
    }
    std::cout << p.input;
    if (!p.labels.empty()) {
      for (const auto& [label, probability] : p.labels) std::cout << absl::StrFormat("\t%s %.4f", label, probability);
      std::cout << "\n";
    } else {
      std::cout << " -> " << p.generated << "\n";
    }
  }
  if (args->GetBool("json")) std::cout << all.dump(2) << "\n";
  return 0;
}

int RunInit(int argc, char** argv) {
  const std::vector<FlagSpec> flags = {
      {"arch", "bert | gpt2 | cnn", ""},
      {"preset", "bert: base (BERT-base shape), reference, deep (8 blocks), tiny; gpt2: small (GPT-2 small shape), reference, tiny; cnn: reference", ""},
      {"out", "folder for config.json + model.safetensors (required)", ""},
      {"seed", "random seed", "0"},
      kHelpFlag,
  };
  const std::string synopsis = "shrink init --arch bert|gpt2|cnn --preset NAME --out DIR";
  SHRINK_PARSE_OR_EXIT(args, argc, argv, flags, synopsis);
  for (const char* required : {"arch", "preset", "out"}) {
    if (args->Get(required).empty()) {
      return UsageError(absl::InvalidArgumentError(absl::StrCat("--", required, " is required")), synopsis, flags);
    }
  }
  auto seed = args->GetInt("seed");
  if (!seed.ok()) return UsageError(seed.status(), synopsis, flags);
  const std::string arch = args->Get("arch");
  if (arch != "bert" && arch != "gpt2" && arch != "cnn") {
    return UsageError(absl::InvalidArgumentError(absl::StrCat("--arch ", arch, " is not one of bert, gpt2, cnn")), synopsis, flags);
  }
  if (auto s = worker::InitModel(arch, args->Get("preset"), static_cast<uint64_t>(*seed), args->Get("out")); !s.ok()) {
    return s.code() == absl::StatusCode::kInvalidArgument ? UsageError(s, synopsis, flags) : Failure(s);
  }
  auto model = worker::Model::Load(args->Get("out"));
  if (!model.ok()) return Failure(model.status());
  const auto d = (*model)->Describe();
  std::cout << absl::StrFormat("wrote a random %s %s to %s: %d parameters, %d bytes\n", arch, args->Get("preset"),
                               args->Get("out"), d.params(), d.bytes());
  return 0;
}

int RunApply(int argc, char** argv) {
  const std::vector<FlagSpec> flags = {
      {"model", "the uncompressed model folder (required)", ""},
      {"policy", "policy JSON file: {\"layers\": [...]} or {\"uniform\": {...}} (required)", ""},
      {"out", "folder for the compressed model (required)", ""},
      {"task", "task to measure both models on (default: fashion-mnist for the cnn, none for transformers)", ""},
      {"split", "validation | test", "test"},
      {"importance", "how pruning ranks heads / neurons / channels: magnitude | activation (on the task's training data)", "magnitude"},
      {"distill-steps", "distillation steps when the policy distills (any distill > 0; needs --task)",
       std::to_string(worker::kFinalDistillSteps)},
      {"distill-lr", "peak learning rate of distillation (0 = the family's default)", "0"},
      {"threads", "intra-op threads (0 = all cores)", "0"},
      kLatencyBatchFlag,
      kSeqLenFlag,
      {"json", "print JSON", "", true},
      kHelpFlag,
  };
  const std::string synopsis = "shrink apply --model DIR --policy POLICY.json --out DIR [--task SPEC] [--json]";
  SHRINK_PARSE_OR_EXIT(args, argc, argv, flags, synopsis);
  for (const char* required : {"model", "policy", "out"}) {
    if (args->Get(required).empty()) {
      return UsageError(absl::InvalidArgumentError(absl::StrCat("--", required, " is required")), synopsis, flags);
    }
  }
  auto options = EvalOptionsFrom(*args);
  if (!options.ok()) return UsageError(options.status(), synopsis, flags);
  auto policy_text = ReadFile(args->Get("policy"));
  if (!policy_text.ok()) return Failure(policy_text.status());
  auto policy = ParsePolicyJson(*policy_text);
  if (!policy.ok()) return Failure(policy.status());
  auto model = worker::Model::Load(args->Get("model"));
  if (!model.ok()) return Failure(model.status());
  auto data = TaskFor(args->Get("task"), **model);
  if (!data.ok()) return Failure(data.status());
  // The same code path as the search's candidates; 4..7-bit layers calibrate on the task's data.
  worker::ApplyOptions apply;
  apply.data = *data;
  if (!absl::SimpleAtoi(args->Get("distill-steps"), &apply.distill.max_steps) || apply.distill.max_steps < 0) {
    return UsageError(absl::InvalidArgumentError(absl::StrCat("--distill-steps ", args->Get("distill-steps"),
                                                              " is not a count >= 0")),
                      synopsis, flags);
  }
  if (!absl::SimpleAtod(args->Get("distill-lr"), &apply.distill.learning_rate) || !(apply.distill.learning_rate >= 0)) {
    return UsageError(absl::InvalidArgumentError(absl::StrCat("--distill-lr ", args->Get("distill-lr"),
                                                              " is not a learning rate >= 0")),
                      synopsis, flags);
  }
  if (args->Get("importance") == "activation") {
    apply.criterion = worker::PruneCriterion::kActivation;
  } else if (args->Get("importance") != "magnitude") {
    return UsageError(absl::InvalidArgumentError(absl::StrCat("--importance ", args->Get("importance"),
                                                              " is not one of magnitude, activation")),
                      synopsis, flags);
  }
  auto compressed = (*model)->Apply(*policy, apply);
  if (!compressed.ok()) return Failure(compressed.status());
  if (auto s = (*compressed)->Save(args->Get("out")); !s.ok()) return Failure(s);

  auto baseline = Evaluate(**model, *data, args->Get("split"), *options);
  if (!baseline.ok()) return Failure(baseline.status());
  auto measured = Evaluate(**compressed, *data, args->Get("split"), *options);
  if (!measured.ok()) return Failure(measured.status());
  v1::Evaluation evaluation = worker::CompareToBaseline(*measured, *baseline);
  if (args->GetBool("json")) {
    std::cout << FormatEvaluationJson(evaluation) << "\n";
  } else {
    ResultRow row{"policy", evaluation};
    row.has_goal = false;
    std::cout << FormatResultTable({row});
    std::cout << "compressed model written to " << args->Get("out") << "\n";
  }
  return 0;
}

int RunDemo(int argc, char** argv) {
  const std::vector<FlagSpec> flags = {
      {"budget", "evaluations per search method", "16"},
      {"target-size", "size target", "0.25"},
      {"min-retention", "retention floor", "0.95"},
      {"cache", "folder for the reference model and results (env SHRINK_CACHE)", ""},
      {"seed", "seed of the searches", "0"},
      kHelpFlag,
  };
  const std::string synopsis = "shrink demo [--budget N] [--target-size F] [--min-retention F]";
  SHRINK_PARSE_OR_EXIT(args, argc, argv, flags, synopsis);
  std::string cache = args->Get("cache").empty() ? DefaultCacheDir() : args->Get("cache");
  std::string model_dir = absl::StrCat(cache, "/reference/cnn-fashion-mnist");

  if (!PathExists(model_dir + "/model.safetensors")) {
    std::cerr << "training the reference CNN on Fashion-MNIST (once; cached in " << model_dir << ")\n";
    auto report = Train(worker::TrainOptions(), model_dir);
    if (!report.ok()) return Failure(report.status());
    std::cerr << absl::StrFormat("  test accuracy %.2f%% after %.0f s\n", 100 * report->test_accuracy,
                                 report->seconds);
  }
  CompressRequest request;
  request.model_dir = model_dir;
  auto budget = args->GetInt("budget");
  auto target = args->GetDouble("target-size");
  auto retention = args->GetDouble("min-retention");
  auto seed = args->GetInt("seed");
  if (!budget.ok() || !target.ok() || !retention.ok() || !seed.ok()) {
    return UsageError(absl::InvalidArgumentError("--budget/--seed take integers, --target-size/--min-retention numbers"),
                      synopsis, flags);
  }
  request.budget = static_cast<int>(*budget);
  request.target_size = *target;
  request.min_retention = *retention;
  request.seed = static_cast<uint64_t>(*seed);

  EmbeddedOptions options;  // one worker, two slots: both cores busy
  auto service = EmbeddedService::Start(options);
  if (!service.ok()) return Failure(service.status());
  CoordinatorClient client((*service)->channel());
  std::vector<ResultRow> rows;
  for (const char* search : {"uniform", "random", "evolution", "ddpg"}) {
    request.search = search;
    std::string out = absl::StrCat(cache, "/demo/", search);
    std::cerr << "compressing with " << search << " search, budget " << request.budget << "\n";
    auto job = RunJob(client, request, out, true);
    if (!job.ok()) return Failure(job.status());
    const std::string name = std::string(search) == "uniform" ? "uniform (manual)"
                             : std::string(search) == "ddpg"  ? "agent (DDPG)"
                                                              : search;
    rows.push_back({name, job->final_evaluation(), job->goal_met()});
  }
  std::cout << "\nShrink demo: reference CNN on Fashion-MNIST, target size "
            << 100 * request.target_size << "%, min retention " << 100 * request.min_retention
            << "%, budget " << request.budget << " per method\n\n";
  std::cout << FormatResultTable(rows);
  std::cout << "\ncompressed models: " << cache << "/demo/{uniform,random,evolution,ddpg}"
            << "  (try: build/bin/shrink eval --model " << cache << "/demo/ddpg)\n";
  return 0;
}

}  // namespace shrink::client::local
