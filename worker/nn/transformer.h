// Transformer modules (internal: pulls in torch): one encoder/decoder stack
// covering BERT, DistilBERT and RoBERTa (post-LayerNorm, bidirectional, with a
// sequence-classification head) and GPT-2 (pre-LayerNorm, causal, tied LM
// head). Every block's heads and FFN width are its own, so unevenly pruned
// models fit. Device-agnostic: tensors follow the module's device.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "worker/nn/int8_linear.h"
#include "worker/checkpoint/transformer_config.h"

namespace shrink::worker {

// y = x W^T + b with W [out, in]; computed in fp32, or by an int8 kernel once UseInt8 is called.
class DenseImpl : public torch::nn::Module {
 public:
  DenseImpl(int64_t in, int64_t out);
  torch::Tensor forward(const torch::Tensor& x);
  // Switches to an int8 kernel; the fp32 weight is dropped.
  void UseInt8(std::shared_ptr<const Int8Linear> kernel);

  torch::Tensor weight, bias;
  std::shared_ptr<const Int8Linear> int8;
  // When set, sees every input before the layer computes (GPTQ calibration records inputs).
  std::function<void(const torch::Tensor&)> observer;
};
TORCH_MODULE(Dense);

// Intermediate tensors of one forward pass, recorded for distillation (Encode's `trace`).
struct TransformerTrace {
  std::vector<torch::Tensor> hidden;     // each block's output [B, T, H]
  std::vector<torch::Tensor> attention;  // each block's attention probabilities [B, heads, T, T]
};

// Multi-head self-attention; heads = q rows / head_dim.
class SelfAttentionImpl : public torch::nn::Module {
 public:
  SelfAttentionImpl(int64_t hidden, int64_t heads, int64_t head_dim, double dropout);
  // x [B, T, H]; `bias` [B, 1, T|1, T] additive (0 or a large negative), may be undefined.
  // The attention probabilities (before dropout) go to *probs when given.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& bias, torch::Tensor* probs = nullptr);
  // Attention of head `h` is multiplied by head_mask[h] when defined (tests: masked original).
  torch::Tensor head_mask;

  Dense q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
  int64_t heads, head_dim;
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(SelfAttention);

// fc2(act(fc1(x))).
class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t hidden, int64_t intermediate, std::string activation);
  torch::Tensor forward(const torch::Tensor& x);

  Dense fc1{nullptr}, fc2{nullptr};
  std::string activation;
};
TORCH_MODULE(FeedForward);

// One block: attention + FFN with residuals; LayerNorm after (BERT family) or before (GPT-2).
class TransformerBlockImpl : public torch::nn::Module {
 public:
  TransformerBlockImpl(const TransformerConfig& config, const TransformerLayerShape& shape);
  // Appends the block's output and attention probabilities to *trace when given.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& bias, TransformerTrace* trace = nullptr);

  SelfAttention attention{nullptr};
  FeedForward ffn{nullptr};
  torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  torch::nn::Dropout dropout{nullptr};
  bool pre_ln;
};
TORCH_MODULE(TransformerBlock);

class TransformerImpl : public torch::nn::Module {
 public:
  // Shapes from `config` (config.layers per block); weights randomly initialised as HF does
  // (normal(0, 0.02), zero biases, unit LayerNorms).
  explicit TransformerImpl(const TransformerConfig& config, double dropout = 0.1);

  // Final hidden states [B, T, H] for token ids [B, T] and mask [B, T] (1 = token, 0 = padding);
  // every block's output and attention go to *trace when given.
  torch::Tensor Encode(const torch::Tensor& ids, const torch::Tensor& mask, TransformerTrace* trace = nullptr);
  // Encoders: class logits [B, num_labels]. Decoders: next-token logits [B, T, V].
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& mask);
  // Encoder head on hidden states: logits from the first token.
  torch::Tensor Classify(const torch::Tensor& hidden);
  // Decoder head on hidden states: logits through the (tied) word embeddings.
  torch::Tensor LmLogits(const torch::Tensor& hidden);

  // Forward pass that adds the milliseconds spent in each stage to `ms`:
  // [embeddings, block0.attention, block0.ffn, ..., head]. Eval mode only.
  torch::Tensor ProfiledForward(const torch::Tensor& ids, const torch::Tensor& mask, std::vector<double>& ms);

  const TransformerConfig& config() const { return config_; }

  torch::nn::Embedding word{nullptr}, position{nullptr}, token_type{nullptr};
  torch::nn::LayerNorm embedding_ln{nullptr}, final_ln{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  std::vector<TransformerBlock> block_list;
  Dense pool{nullptr}, classifier{nullptr};  // encoders only
  std::shared_ptr<const Int8Linear> lm_head_int8;  // decoders with int8 embeddings
  torch::nn::Dropout dropout{nullptr};

 private:
  torch::Tensor Embed(const torch::Tensor& ids, const torch::Tensor& mask);
  torch::Tensor AttentionBias(const torch::Tensor& mask, int64_t length);

  TransformerConfig config_;
};
TORCH_MODULE(Transformer);

}  // namespace shrink::worker
