// Pretraining transformers on general text, as users' checkpoints are made: masked-language
// modelling (BERT, RoBERTa) or causal language modelling (GPT-2) on a PretrainCorpus, with a
// vocabulary learned on it, resumable from its own checkpoints, on the CPU or a CUDA GPU. The
// output is a Hugging Face folder with the pretraining head (cls.predictions.* / lm_head.*)
// that `shrink train --init` fine-tunes. Torch-free header.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"

namespace shrink::worker {

struct PretrainCorpus;  // worker/data/pretrain_corpus.h

// The folder under --out that holds the resumable state of an unfinished run.
inline constexpr char kPretrainStateDir[] = "pretrain-state";
// The record of a finished run: corpus, token counts, options, validation history.
inline constexpr char kPretrainRecordFile[] = "pretraining.json";

struct PretrainOptions {
  std::string arch = "bert";           // bert | roberta (masked LM) | gpt2 (causal LM)
  std::string preset = "reference";    // shape: TransformerPreset's names
  int64_t vocab_size = 8000;           // WordPiece (bert) or byte-level BPE (roberta, gpt2) size
  int64_t vocab_documents = 0;         // learn the vocabulary on the first N training documents (0 = all)
  int max_length = 128;                // tokens per row (documents are packed into full rows)
  int batch_size = 64;                 // rows per optimizer step
  // Rows per forward pass, the gradient accumulated over the batch (less memory, same step);
  // 0 = as many as keep every activation under 32 MiB, which is fastest on the CPU.
  int micro_batch = 0;
  double learning_rate = 5e-4;         // peak AdamW rate: linear warm-up over 5% of the steps, linear decay
  int64_t steps = 0;                   // optimizer steps; 0 = as many as `tokens` needs
  int64_t tokens = 20'000'000;         // tokens to train on when steps is 0
  uint64_t seed = 0;                   // masking, dropout, data order and initialisation
  int threads = 0;                     // intra-op threads (0 = all cores); results depend on it
  std::string device = "cpu";          // "cpu" or "cuda:N"
  bool resume = false;                 // continue the run checkpointed in out_dir
  int64_t pause_after = 0;             // stop after this many steps in all, resumable (0 = run to the end)
  double checkpoint_minutes = 10;      // how often the resumable state is written
  int evaluations = 10;                // validation passes spread over the run
  int64_t validation_rows = 512;       // at most this many validation rows are scored
};

struct PretrainReport {
  bool finished = false;         // false when paused (pause_after); the model is then not written
  int64_t steps_done = 0;
  int64_t total_steps = 0;
  int64_t tokens_seen = 0;       // training tokens consumed (steps x batch x length)
  int64_t train_tokens = 0;      // tokens in the packed training rows (one epoch)
  int64_t validation_tokens = 0;
  int64_t vocab_size = 0;
  int64_t params = 0;            // base model + pretraining head
  double seconds = 0;            // wall time of this invocation
  double tokens_per_second = 0;  // training throughput of this invocation (steps only, no validation)
  double validation_loss = 0;    // masked-token (encoders) or next-token (gpt2) cross-entropy
  double validation_accuracy = 0;    // encoders: masked tokens predicted exactly
  double validation_perplexity = 0;  // gpt2: exp(validation_loss)
};

// Pretrains options.arch on `corpus` and writes the model into `out_dir`: config.json,
// model.safetensors (HF names, pretraining head included), tokenizer files and
// pretraining.json. Deterministic for a seed, thread count and device; a run resumed from its
// checkpoint ends with the same weights as one never interrupted. `progress` gets human lines
// (tokens/s, ETA) and may be null. Errors name the option or the checkpoint file at fault.
absl::StatusOr<PretrainReport> Pretrain(const PretrainCorpus& corpus, const PretrainOptions& options,
                                        const std::string& out_dir,
                                        const std::function<void(const std::string&)>& progress);

}  // namespace shrink::worker
