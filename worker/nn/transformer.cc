#include "worker/nn/transformer.h"

#include <chrono>
#include <cmath>

#include "worker/nn/torch_device.h"

namespace shrink::worker {
namespace {

constexpr double kMaskValue = -1e9;

torch::Tensor Activate(const torch::Tensor& x, const std::string& activation) {
  if (activation == "gelu_new") return torch::gelu(x, "tanh");  // GPT-2's tanh approximation
  if (activation == "relu") return torch::relu(x);
  return torch::gelu(x);  // exact erf GELU (BERT)
}

torch::nn::LayerNorm MakeLayerNorm(int64_t hidden, double eps) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden}).eps(eps));
}

double Since(std::chrono::steady_clock::time_point& start) {
  auto now = std::chrono::steady_clock::now();
  double ms = std::chrono::duration<double, std::milli>(now - start).count();
  start = now;
  return ms;
}

}  // namespace

DenseImpl::DenseImpl(int64_t in, int64_t out) {
  weight = register_parameter("weight", torch::randn({out, in}) * kTransformerInitStd);
  bias = register_parameter("bias", torch::zeros({out}));
}

torch::Tensor DenseImpl::forward(const torch::Tensor& x) {
  if (observer) observer(x);
  if (int8) {
    // The int8 kernel takes 2-D input: flatten the leading dims and restore them.
    auto sizes = x.sizes().vec();
    sizes.back() = int8->out_features();
    return int8->Forward(x.reshape({-1, x.size(-1)})).view(sizes);
  }
  return torch::nn::functional::linear(x, weight, bias);
}

void DenseImpl::UseInt8(std::shared_ptr<const Int8Linear> kernel) {
  int8 = std::move(kernel);
  weight = torch::Tensor();
  bias = torch::Tensor();
  // Parameters stay registered as empty tensors would break state dicts; drop them.
  parameters_.clear();
}

SelfAttentionImpl::SelfAttentionImpl(int64_t hidden, int64_t heads_, int64_t head_dim_, double p)
    : heads(heads_), head_dim(head_dim_) {
  const int64_t inner = heads * head_dim;
  q = register_module("q", Dense(hidden, inner));
  k = register_module("k", Dense(hidden, inner));
  v = register_module("v", Dense(hidden, inner));
  o = register_module("o", Dense(inner, hidden));
  dropout = register_module("dropout", torch::nn::Dropout(p));
}

torch::Tensor SelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& bias, torch::Tensor* probs_out) {
  const int64_t b = x.size(0), t = x.size(1);
  auto split = [&](const torch::Tensor& y) { return y.view({b, t, heads, head_dim}).transpose(1, 2); };
  torch::Tensor qh = split(q(x)), kh = split(k(x)), vh = split(v(x));
  torch::Tensor scores = torch::matmul(qh, kh.transpose(-1, -2)) / std::sqrt(static_cast<double>(head_dim));
  if (bias.defined()) scores = scores + bias;
  torch::Tensor probs = torch::softmax(scores, -1);
  if (probs_out != nullptr) *probs_out = probs;
  probs = dropout(probs);
  if (head_mask.defined()) probs = probs * head_mask.view({1, heads, 1, 1});
  torch::Tensor context = torch::matmul(probs, vh).transpose(1, 2).reshape({b, t, heads * head_dim});
  return o(context);
}

FeedForwardImpl::FeedForwardImpl(int64_t hidden, int64_t intermediate, std::string activation_)
    : activation(std::move(activation_)) {
  fc1 = register_module("fc1", Dense(hidden, intermediate));
  fc2 = register_module("fc2", Dense(intermediate, hidden));
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) { return fc2(Activate(fc1(x), activation)); }

TransformerBlockImpl::TransformerBlockImpl(const TransformerConfig& config, const TransformerLayerShape& shape)
    : pre_ln(config.is_decoder()) {
  attention = register_module("attention", SelfAttention(config.hidden, shape.heads, config.head_dim(), 0.1));
  ffn = register_module("ffn", FeedForward(config.hidden, shape.intermediate, config.activation));
  ln1 = register_module("ln1", MakeLayerNorm(config.hidden, config.layer_norm_eps));
  ln2 = register_module("ln2", MakeLayerNorm(config.hidden, config.layer_norm_eps));
  dropout = register_module("dropout", torch::nn::Dropout(0.1));
}

torch::Tensor TransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& bias, TransformerTrace* trace) {
  torch::Tensor probs;
  torch::Tensor* probs_out = trace != nullptr ? &probs : nullptr;
  torch::Tensor out;
  if (pre_ln) {
    torch::Tensor h = x + dropout(attention(ln1(x), bias, probs_out));
    out = h + dropout(ffn(ln2(h)));
  } else {
    torch::Tensor h = ln1(x + dropout(attention(x, bias, probs_out)));
    out = ln2(h + dropout(ffn(h)));
  }
  if (trace != nullptr) {
    trace->hidden.push_back(out);
    trace->attention.push_back(probs);
  }
  return out;
}

TransformerImpl::TransformerImpl(const TransformerConfig& config, double p) : config_(config) {
  torch::NoGradGuard no_grad;
  word = register_module("word", torch::nn::Embedding(config.vocab_size, config.hidden));
  position = register_module("position", torch::nn::Embedding(config.max_positions, config.hidden));
  torch::nn::init::normal_(word->weight, 0, kTransformerInitStd);
  torch::nn::init::normal_(position->weight, 0, kTransformerInitStd);
  if (config.type_vocab_size > 0) {
    token_type = register_module("token_type", torch::nn::Embedding(config.type_vocab_size, config.hidden));
    torch::nn::init::normal_(token_type->weight, 0, kTransformerInitStd);
  }
  if (!config.is_decoder()) embedding_ln = register_module("embedding_ln", MakeLayerNorm(config.hidden, config.layer_norm_eps));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (const auto& shape : config.layers) {
    TransformerBlock block(config, shape);
    blocks->push_back(block);
    block_list.push_back(block);
  }
  if (config.is_decoder()) {
    final_ln = register_module("final_ln", MakeLayerNorm(config.hidden, config.layer_norm_eps));
  } else {
    pool = register_module("pool", Dense(config.hidden, config.hidden));
    classifier = register_module("classifier", Dense(config.hidden, config.num_labels));
  }
  dropout = register_module("dropout", torch::nn::Dropout(p));
}

torch::Tensor TransformerImpl::Embed(const torch::Tensor& ids, const torch::Tensor& mask) {
  const int64_t t = ids.size(1);
  TORCH_CHECK(t <= config_.max_sequence(), "sequence of ", t, " tokens exceeds the model's ", config_.max_sequence(),
              " positions");
  torch::Tensor positions;
  if (config_.family == TransformerFamily::kRoberta) {
    // HF's create_position_ids_from_input_ids: padding keeps padding_idx, tokens count from padding_idx + 1.
    torch::Tensor not_pad = ids.ne(config_.pad_token_id).to(torch::kInt64);
    positions = torch::cumsum(not_pad, 1) * not_pad + config_.pad_token_id;
  } else {
    positions = torch::arange(t, ids.options().dtype(torch::kInt64)).unsqueeze(0).expand({ids.size(0), t});
  }
  torch::Tensor x = word(ids) + position(positions);
  if (token_type) x = x + token_type->weight[0];
  if (embedding_ln) x = embedding_ln(x);
  return dropout(x);
}

torch::Tensor TransformerImpl::AttentionBias(const torch::Tensor& mask, int64_t t) {
  auto options = torch::TensorOptions().dtype(torch::kFloat32).device(mask.device());
  torch::Tensor bias = (1 - mask.to(torch::kFloat32)).view({mask.size(0), 1, 1, t}) * kMaskValue;
  if (config_.is_decoder()) {
    torch::Tensor causal = torch::ones({t, t}, options).triu(1) * kMaskValue;
    bias = bias + causal.view({1, 1, t, t});
  }
  return bias;
}

torch::Tensor TransformerImpl::Encode(const torch::Tensor& ids, const torch::Tensor& mask, TransformerTrace* trace) {
  torch::Tensor x = Embed(ids, mask);
  torch::Tensor bias = AttentionBias(mask, ids.size(1));
  for (auto& block : block_list) x = block(x, bias, trace);
  if (final_ln) x = final_ln(x);
  return x;
}

torch::Tensor TransformerImpl::Classify(const torch::Tensor& hidden) {
  torch::Tensor first = dropout(hidden.select(1, 0));
  torch::Tensor pooled = pool(first);
  pooled = config_.family == TransformerFamily::kDistilBert ? torch::relu(pooled) : torch::tanh(pooled);
  return classifier(dropout(pooled));
}

torch::Tensor TransformerImpl::LmLogits(const torch::Tensor& hidden) {
  if (lm_head_int8) return lm_head_int8->Forward(hidden);
  return torch::nn::functional::linear(hidden, word->weight);
}

torch::Tensor TransformerImpl::forward(const torch::Tensor& ids, const torch::Tensor& mask) {
  torch::Tensor hidden = Encode(ids, mask);
  return config_.is_decoder() ? LmLogits(hidden) : Classify(hidden);
}

torch::Tensor TransformerImpl::ProfiledForward(const torch::Tensor& ids, const torch::Tensor& mask,
                                               std::vector<double>& ms) {
  ms.resize(2 + 2 * block_list.size(), 0.0);
  // A stage's time is read once its kernels ran (GPUs queue them; nothing to wait for on the CPU).
  const torch::Device device = ids.device();
  SynchronizeDevice(device);
  auto start = std::chrono::steady_clock::now();
  auto Since = [&device](std::chrono::steady_clock::time_point& start) {
    SynchronizeDevice(device);
    return shrink::worker::Since(start);
  };
  torch::Tensor x = Embed(ids, mask);
  torch::Tensor bias = AttentionBias(mask, ids.size(1));
  ms[0] += Since(start);
  for (size_t i = 0; i < block_list.size(); ++i) {
    TransformerBlock& block = block_list[i];
    // The same arithmetic as TransformerBlockImpl::forward in eval mode, split at the sublayers.
    if (block->pre_ln) {
      x = x + block->attention(block->ln1(x), bias);
      ms[1 + 2 * i] += Since(start);
      x = x + block->ffn(block->ln2(x));
    } else {
      x = block->ln1(x + block->attention(x, bias));
      ms[1 + 2 * i] += Since(start);
      x = block->ln2(x + block->ffn(x));
    }
    ms[2 + 2 * i] += Since(start);
  }
  if (final_ln) x = final_ln(x);
  torch::Tensor out = config_.is_decoder() ? LmLogits(x) : Classify(x);
  ms.back() += Since(start);
  return out;
}

}  // namespace shrink::worker
