// `shrink pretrain`: builds the corpus and pretrains a transformer on it (worker/train/pretrain.h).
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/local/commands.h"
#include "client/remote/command_util.h"
#include "worker/data/pretrain_corpus.h"
#include "worker/train/pretrain.h"

namespace shrink::client::local {

int RunPretrain(int argc, char** argv) {
  const worker::PretrainOptions defaults;
  const std::vector<FlagSpec> flags = {
      {"arch", "bert | roberta (masked-language modelling) | gpt2 (causal language modelling)", defaults.arch},
      {"corpus", "comma-separated sources: gcide (dict-gcide), wordnet (wordnet-base), fortunes, or text files (a document per paragraph)",
       worker::kDefaultPretrainCorpus},
      {"out", "folder for config.json, model.safetensors (with the pretraining head), tokenizer files, pretraining.json (required)", ""},
      {"preset", "shape: reference (4 layers, hidden 256), deep (bert/roberta: 8 layers), base, tiny", defaults.preset},
      {"vocab-size", "vocabulary learned on the corpus (WordPiece for bert, byte-level BPE otherwise)", absl::StrCat(defaults.vocab_size)},
      {"vocab-documents", "learn the vocabulary on the first N training documents (0 = all)", "0"},
      {"max-length", "tokens per training row", absl::StrCat(defaults.max_length)},
      {"batch-size", "rows per step", absl::StrCat(defaults.batch_size)},
      {"micro-batch", "rows per forward pass, gradients accumulated over the batch (0 = automatic: activations under 32 MiB)", "0"},
      {"learning-rate", "peak AdamW rate (5% linear warm-up, then linear decay)", absl::StrFormat("%g", defaults.learning_rate)},
      {"tokens", "training tokens (steps = tokens / (batch-size x max-length))", absl::StrCat(defaults.tokens)},
      {"steps", "optimizer steps (overrides --tokens)", "0"},
      {"seed", "random seed (deterministic for a seed, thread count and device)", "0"},
      {"threads", "intra-op threads (0 = all cores)", "0"},
      {"device", "cpu or cuda:N", defaults.device},
      {"resume", "continue the unfinished run checkpointed in --out (same options)", "", true},
      {"pause-after", "stop after this many steps in all, checkpointed for --resume (0 = run to the end)", "0"},
      {"checkpoint-minutes", "how often the resumable checkpoint is written", "10"},
      {"help", "show this help", "", true},
  };
  const std::string synopsis =
      "shrink pretrain --arch bert|roberta|gpt2 --out DIR [--corpus gcide,wordnet,fortunes|FILE,...] [--tokens N] [--device cuda:0] [--resume]";
  SHRINK_PARSE_OR_EXIT(args, argc, argv, flags, synopsis);
  if (args->Get("out").empty()) return UsageError(absl::InvalidArgumentError("--out is required"), synopsis, flags);
  worker::PretrainOptions options;
  options.arch = args->Get("arch");
  options.preset = args->Get("preset");
  options.device = args->Get("device");
  options.resume = args->GetBool("resume");
  auto vocab = args->GetInt("vocab-size"), vocab_documents = args->GetInt("vocab-documents"),
       length = args->GetInt("max-length"), batch = args->GetInt("batch-size"), micro = args->GetInt("micro-batch"),
       tokens = args->GetInt("tokens"),
       steps = args->GetInt("steps"), seed = args->GetInt("seed"), threads = args->GetInt("threads"),
       pause = args->GetInt("pause-after");
  for (const auto* v : {&vocab, &vocab_documents, &length, &batch, &micro, &tokens, &steps, &seed, &threads, &pause}) {
    if (!v->ok()) return UsageError(v->status(), synopsis, flags);
  }
  auto rate = args->GetDouble("learning-rate"), checkpoint = args->GetDouble("checkpoint-minutes");
  if (!rate.ok()) return UsageError(rate.status(), synopsis, flags);
  if (!checkpoint.ok()) return UsageError(checkpoint.status(), synopsis, flags);
  options.vocab_size = *vocab;
  options.vocab_documents = *vocab_documents;
  options.max_length = static_cast<int>(*length);
  options.batch_size = static_cast<int>(*batch);
  options.micro_batch = static_cast<int>(*micro);
  options.tokens = *tokens;
  options.steps = *steps;
  options.seed = static_cast<uint64_t>(*seed);
  options.threads = static_cast<int>(*threads);
  options.pause_after = *pause;
  options.learning_rate = *rate;
  options.checkpoint_minutes = *checkpoint;
  auto log = [](const std::string& line) { std::cerr << "  " << line << "\n"; };

  auto corpus = worker::BuildPretrainCorpus(args->Get("corpus"), options.seed);
  if (!corpus.ok()) return Failure(corpus.status());
  for (const auto& s : corpus->sources) {
    log(absl::StrFormat("corpus %s: %d documents, %.1f MB (dropped: %d repeats, %d held-out task texts)", s.name,
                        s.documents, static_cast<double>(s.chars) / 1e6, s.duplicates, s.held_out));
  }
  log(absl::StrFormat("corpus: %d training documents, %d validation documents", corpus->train.size(),
                      corpus->validation.size()));
  auto report = worker::Pretrain(*corpus, options, args->Get("out"), log);
  if (!report.ok()) return Failure(report.status());
  if (!report->finished) {
    std::cout << absl::StrFormat("paused at step %d of %d; continue with the same command and --resume\n",
                                 report->steps_done, report->total_steps);
    return 0;
  }
  const std::string quality = options.arch == "gpt2"
                                  ? absl::StrFormat("validation perplexity %.2f", report->validation_perplexity)
                                  : absl::StrFormat("validation masked-token accuracy %.2f%% (loss %.4f)",
                                                    100 * report->validation_accuracy, report->validation_loss);
  std::cout << absl::StrFormat("pretrained %s on %.1f M tokens (%.2f epochs of %.1f M) in %.0f s at %.0f tokens/s: %s\n",
                               options.arch, static_cast<double>(report->tokens_seen) / 1e6,
                               static_cast<double>(report->tokens_seen) / static_cast<double>(report->train_tokens),
                               static_cast<double>(report->train_tokens) / 1e6, report->seconds,
                               report->tokens_per_second, quality);
  std::cout << "saved to " << args->Get("out") << " (fine-tune it with shrink train --init " << args->Get("out") << ")\n";
  return 0;
}

}  // namespace shrink::client::local
