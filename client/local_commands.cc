// Commands that work on local files without a coordinator: train, eval, and
// the end-to-end demo (which runs embedded).
#include <cstdlib>
#include <iostream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/command_util.h"
#include "client/commands.h"
#include "client/coordinator_client.h"
#include "client/embedded.h"
#include "client/report.h"
#include "common/files.h"
#include "common/policy.h"
#include "common/status.h"
#include "worker/model.h"
#include "worker/task_runner.h"

namespace shrink::client {
namespace {

const FlagSpec kHelpFlag = {"help", "show this help", "", true};

// ~/.cache/shrink, or $SHRINK_CACHE.
std::string DefaultCacheDir() {
  if (const char* env = std::getenv("SHRINK_CACHE")) return env;
  if (const char* home = std::getenv("HOME")) return absl::StrCat(home, "/.cache/shrink");
  return "/tmp/shrink-cache";
}

absl::StatusOr<std::shared_ptr<const worker::ImageDataset>> LoadBuiltinData(const std::string& task) {
  SHRINK_ASSIGN_OR_RETURN(auto files, BuiltinTaskFiles(task));
  std::map<std::string, std::string> by_name(files.begin(), files.end());
  return worker::ImageDataset::LoadFashionMnist(by_name);
}

// Trains the reference CNN into `out_dir`, printing progress to stderr.
absl::StatusOr<worker::TrainReport> Train(const worker::TrainOptions& options, const std::string& out_dir) {
  SHRINK_ASSIGN_OR_RETURN(auto data, LoadBuiltinData("fashion-mnist"));
  return worker::TrainCnn(*data, options, out_dir,
                          [](const std::string& line) { std::cerr << "  " << line << "\n"; });
}

}  // namespace

int RunTrain(int argc, char** argv) {
  const std::vector<FlagSpec> flags = {
      {"arch", "architecture: cnn", "cnn"},
      {"data", "training data: fashion-mnist", "fashion-mnist"},
      {"out", "folder for config.json + model.safetensors (required)", ""},
      {"epochs", "passes over the training split", "3"},
      {"seed", "random seed (training is deterministic for a seed)", "0"},
      {"threads", "intra-op threads (0 = all cores)", "0"},
      {"max-examples", "train on the first N examples only (0 = all)", "0"},
      kHelpFlag,
  };
  const std::string synopsis = "shrink train --arch cnn --data fashion-mnist --out DIR [--epochs N] [--seed S]";
  SHRINK_PARSE_OR_EXIT(args, argc, argv, flags, synopsis);
  if (args->Get("out").empty()) return UsageError(absl::InvalidArgumentError("--out is required"), synopsis, flags);
  if (args->Get("arch") != "cnn") {
    return UsageError(absl::InvalidArgumentError(absl::StrCat(
                          "--arch ", args->Get("arch"), " is not in this build (cnn; bert and gpt2 come next)")),
                      synopsis, flags);
  }
  if (args->Get("data") != "fashion-mnist") {
    return UsageError(absl::InvalidArgumentError("--data: the cnn trains on fashion-mnist"), synopsis, flags);
  }
  worker::TrainOptions options;
  auto epochs = args->GetInt("epochs"), seed = args->GetInt("seed"), threads = args->GetInt("threads"),
       max_examples = args->GetInt("max-examples");
  for (const auto* v : {&epochs, &seed, &threads, &max_examples}) {
    if (!v->ok()) return UsageError(v->status(), synopsis, flags);
  }
  options.epochs = static_cast<int>(*epochs);
  options.seed = static_cast<uint64_t>(*seed);
  options.threads = static_cast<int>(*threads);
  options.max_train_examples = *max_examples;
  if (options.epochs < 1) return UsageError(absl::InvalidArgumentError("--epochs must be >= 1"), synopsis, flags);
  auto report = Train(options, args->Get("out"));
  if (!report.ok()) return Failure(report.status());
  std::cout << absl::StrFormat("trained cnn in %.0f s: %d parameters, validation accuracy %.2f%%, test accuracy %.2f%%\n",
                               report->seconds, report->params, 100 * report->validation_accuracy,
                               100 * report->test_accuracy);
  std::cout << "saved to " << args->Get("out") << "\n";
  return 0;
}

int RunEval(int argc, char** argv) {
  const std::vector<FlagSpec> flags = {
      {"model", "model folder (required)", ""},
      {"task", "task to measure accuracy on", "fashion-mnist"},
      {"split", "validation | test", "test"},
      {"threads", "intra-op threads (0 = all cores)", "0"},
      {"json", "print JSON", "", true},
      kHelpFlag,
  };
  const std::string synopsis = "shrink eval --model DIR [--task fashion-mnist] [--json]";
  SHRINK_PARSE_OR_EXIT(args, argc, argv, flags, synopsis);
  if (args->Get("model").empty()) return UsageError(absl::InvalidArgumentError("--model is required"), synopsis, flags);
  auto threads = args->GetInt("threads");
  if (!threads.ok()) return UsageError(threads.status(), synopsis, flags);
  auto model = worker::Model::Load(args->Get("model"));
  if (!model.ok()) return Failure(model.status());
  auto data = LoadBuiltinData(args->Get("task"));
  if (!data.ok()) return Failure(data.status());
  worker::EvalOptions options;
  options.threads = static_cast<int>(*threads);
  auto m = (*model)->Evaluate(**data, args->Get("split"), options);
  if (!m.ok()) return Failure(m.status());
  if (args->GetBool("json")) {
    nlohmann::json j = {{"bytes", m->bytes()},          {"params", m->params()},
                        {"latency_ms", m->latency_ms()}, {"latency_batch", m->latency_batch()},
                        {"threads", m->threads()},       {"accuracy", m->accuracy()},
                        {"flops", m->flops()},           {"split", m->split()},
                        {"examples", m->examples()}};
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << absl::StrFormat(
        "%s: accuracy %.2f%% on %d %s examples, %d bytes, %d parameters, latency %.3f ms "
        "(median, batch %d, %d thread(s))\n",
        args->Get("model"), 100 * m->accuracy(), m->examples(), m->split(), m->bytes(), m->params(),
        m->latency_ms(), m->latency_batch(), m->threads());
  }
  return 0;
}

int RunApply(int argc, char** argv) {
  const std::vector<FlagSpec> flags = {
      {"model", "the uncompressed model folder (required)", ""},
      {"policy", "policy JSON file: {\"layers\": [...]} or {\"uniform\": {...}} (required)", ""},
      {"out", "folder for the compressed model (required)", ""},
      {"task", "task to measure both models on", "fashion-mnist"},
      {"split", "validation | test", "test"},
      {"threads", "intra-op threads (0 = all cores)", "0"},
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
  auto threads = args->GetInt("threads");
  if (!threads.ok()) return UsageError(threads.status(), synopsis, flags);
  auto policy_text = ReadFile(args->Get("policy"));
  if (!policy_text.ok()) return Failure(policy_text.status());
  auto policy = ParsePolicyJson(*policy_text);
  if (!policy.ok()) return Failure(policy.status());
  auto model = worker::Model::Load(args->Get("model"));
  if (!model.ok()) return Failure(model.status());
  auto compressed = (*model)->Apply(*policy);  // the same code path as the search's candidates
  if (!compressed.ok()) return Failure(compressed.status());
  if (auto s = (*compressed)->Save(args->Get("out")); !s.ok()) return Failure(s);

  auto data = LoadBuiltinData(args->Get("task"));
  if (!data.ok()) return Failure(data.status());
  worker::EvalOptions options;
  options.threads = static_cast<int>(*threads);
  auto baseline = (*model)->Evaluate(**data, args->Get("split"), options);
  if (!baseline.ok()) return Failure(baseline.status());
  auto measured = (*compressed)->Evaluate(**data, args->Get("split"), options);
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
  for (const char* search : {"uniform", "random", "evolution"}) {
    request.search = search;
    std::string out = absl::StrCat(cache, "/demo/", search);
    std::cerr << "compressing with " << search << " search, budget " << request.budget << "\n";
    auto job = RunJob(client, request, out, true);
    if (!job.ok()) return Failure(job.status());
    rows.push_back({std::string(search) == "uniform" ? "uniform (manual)" : search, job->final_evaluation(),
                    job->goal_met()});
  }
  std::cout << "\nShrink demo: reference CNN on Fashion-MNIST, target size "
            << 100 * request.target_size << "%, min retention " << 100 * request.min_retention
            << "%, budget " << request.budget << " per method\n\n";
  std::cout << FormatResultTable(rows);
  std::cout << "\ncompressed models: " << cache << "/demo/{uniform,random,evolution}"
            << "  (try: build/bin/shrink eval --model " << cache << "/demo/random)\n";
  return 0;
}

}  // namespace shrink::client
