// Tiny transformers for tests: random, seeded, saved in HF's layout and loaded back.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>
#include <string>

#include "tests/worker/model_test_util.h"
#include "worker/nn/transformer.h"
#include "worker/model/transformer_backend.h"
#include "worker/checkpoint/transformer_checkpoint.h"
#include "worker/checkpoint/transformer_config.h"
#include "worker/nn/transformer_build.h"

namespace shrink::worker::testing {

// 2 layers, hidden 32, 4 heads of 8, FFN 64, vocab 60, 40 positions, 3 labels.
inline TransformerConfig TinyConfig(TransformerFamily family) {
  TransformerConfig c;
  c.family = family;
  c.vocab_size = 60;
  c.hidden = 32;
  c.num_layers = 2;
  c.num_heads = 4;
  c.intermediate = 64;
  c.max_positions = 40;
  c.num_labels = 3;
  c.type_vocab_size = (family == TransformerFamily::kBert || family == TransformerFamily::kRoberta) ? 2 : 0;
  c.pad_token_id = family == TransformerFamily::kRoberta ? 1 : 0;
  c.layer_norm_eps = family == TransformerFamily::kGpt2 || family == TransformerFamily::kRoberta ? 1e-5 : 1e-12;
  c.activation = family == TransformerFamily::kGpt2 ? "gelu_new" : "gelu";
  c.layers.assign(c.num_layers, TransformerLayerShape{c.num_heads, c.intermediate});
  return c;
}

// A random tiny model of `family` written to `dir` (HF layout), and loaded through Model::Load.
inline std::unique_ptr<Model> TinyTransformer(TransformerFamily family, const std::string& dir, uint64_t seed = 5) {
  torch::manual_seed(seed);
  Transformer net(TinyConfig(family));
  // Non-trivial LayerNorms and biases, so a mapping mistake shows in the outputs.
  {
    torch::NoGradGuard no_grad;
    for (auto& p : net->parameters()) p.add_(torch::randn_like(p) * 0.05);
  }
  EXPECT_TRUE(WriteTransformerCheckpoint(WeightsFromModule(net), dir).ok());
  auto model = Model::Load(dir);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::move(*model) : nullptr;
}

// Token ids [2, 7] (no padding token) and a full mask.
inline std::pair<torch::Tensor, torch::Tensor> TinyBatch(uint64_t seed = 9) {
  torch::manual_seed(seed);
  torch::Tensor ids = torch::randint(2, 60, {2, 7}, torch::kInt64);
  return {ids, torch::ones_like(ids)};
}

inline torch::Tensor TransformerLogits(const Model& model, const torch::Tensor& ids, const torch::Tensor& mask) {
  torch::NoGradGuard no_grad;
  return model.impl->transformer()->net->forward(ids, mask);
}

}  // namespace shrink::worker::testing
