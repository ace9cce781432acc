// The masked-language-model head encoders are pretrained with (internal: pulls in torch):
// dense -> GELU -> LayerNorm, then a decoder tied to the word embeddings plus a bias, as
// BERT's `cls.predictions` and RoBERTa's `lm_head` compute it.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

#include "worker/checkpoint/transformer_config.h"
#include "worker/nn/transformer.h"

namespace shrink::worker {

class MlmHeadImpl : public torch::nn::Module {
 public:
  // Fresh head for `config` (an encoder): N(0, 0.02) dense weights, zero biases, unit LayerNorm.
  explicit MlmHeadImpl(const TransformerConfig& config);
  // Vocabulary logits [M, V] for hidden states [M, H] through the tied `word_embeddings` [V, H].
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& word_embeddings);

  Dense dense{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::Tensor bias;
};
TORCH_MODULE(MlmHead);

// The head's tensors under Hugging Face's names for `family`: cls.predictions.* (BERT) or
// lm_head.* (RoBERTa); the tied decoder weight is not repeated, as save_pretrained leaves it out.
std::map<std::string, torch::Tensor> MlmHeadTensors(const MlmHead& head, TransformerFamily family);

}  // namespace shrink::worker
