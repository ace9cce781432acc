// The MLM head and its Hugging Face names.
#include "worker/nn/mlm_head.h"

namespace shrink::worker {

MlmHeadImpl::MlmHeadImpl(const TransformerConfig& config) {
  dense = register_module("dense", Dense(config.hidden, config.hidden));
  norm = register_module(
      "norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({config.hidden}).eps(config.layer_norm_eps)));
  bias = register_parameter("bias", torch::zeros({config.vocab_size}));
}

torch::Tensor MlmHeadImpl::forward(const torch::Tensor& hidden, const torch::Tensor& word_embeddings) {
  // Both BERT's transform (hidden_act) and RoBERTa's lm_head use the exact GELU.
  torch::Tensor x = norm(torch::gelu(dense(hidden)));
  return torch::nn::functional::linear(x, word_embeddings, bias);
}

std::map<std::string, torch::Tensor> MlmHeadTensors(const MlmHead& head, TransformerFamily family) {
  const bool bert = family == TransformerFamily::kBert;
  const std::string dense = bert ? "cls.predictions.transform.dense" : "lm_head.dense";
  const std::string norm = bert ? "cls.predictions.transform.LayerNorm" : "lm_head.layer_norm";
  const std::string bias = bert ? "cls.predictions.bias" : "lm_head.bias";
  auto cpu = [](const torch::Tensor& t) { return t.detach().to(torch::kCPU).contiguous(); };
  return {{dense + ".weight", cpu(head->dense->weight)}, {dense + ".bias", cpu(head->dense->bias)},
          {norm + ".weight", cpu(head->norm->weight)},   {norm + ".bias", cpu(head->norm->bias)},
          {bias, cpu(head->bias)}};
}

}  // namespace shrink::worker
