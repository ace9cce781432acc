// Each family's forward pass against a hand-written one in double precision, from a
// config.json in Hugging Face's own field names: which GELU ("gelu" is erf, "gelu_new"
// the tanh approximation), the LayerNorm epsilon, RoBERTa's position offset, DistilBERT's
// ReLU head, GPT-2's pre-LayerNorm blocks and tied head. Swapping erf and tanh GELU moves
// accuracy by nothing on small models, so only a computation like this one pins them.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "tests/worker/transformer_test_util.h"
#include "worker/nn/transformer_build.h"

namespace shrink::worker {
namespace {

using testing::TempDir;
using Rows = std::vector<std::vector<double>>;  // one row per token

// What Hugging Face computes for a config: the expectations this test pins.
struct Expected {
  bool tanh_gelu = false;   // else erf
  double eps = 1e-12;       // every LayerNorm's
  int64_t position_offset = 0;  // RoBERTa: padding_idx + 1
  bool relu_head = false;   // DistilBERT's pre_classifier; else tanh pooler
};

struct Case {
  const char* name;
  TransformerFamily family;
  nlohmann::json config;  // HF field names merged into the written config.json
  std::vector<std::string> drop;  // keys removed, so the family's default applies
  Expected expected;
};

// gtest names the case in its output instead of dumping its bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

double Gelu(double x, bool tanh_approx) {
  if (tanh_approx) return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
  return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
}

std::vector<double> Vec(const torch::Tensor& t) {
  torch::Tensor d = t.detach().to(torch::kFloat64).contiguous().view(-1);
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

// x W^T + b for W [out, in].
Rows Linear(const Rows& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const int64_t out = weight.size(0), in = weight.size(1);
  const std::vector<double> w = Vec(weight), b = Vec(bias);
  Rows y(x.size(), std::vector<double>(out));
  for (size_t t = 0; t < x.size(); ++t) {
    for (int64_t o = 0; o < out; ++o) {
      double sum = b[o];
      for (int64_t i = 0; i < in; ++i) sum += w[o * in + i] * x[t][i];
      y[t][o] = sum;
    }
  }
  return y;
}

Rows LayerNorm(const Rows& x, const torch::Tensor& gamma, const torch::Tensor& beta, double eps) {
  const std::vector<double> g = Vec(gamma), b = Vec(beta);
  Rows y = x;
  for (auto& row : y) {
    double mean = 0, var = 0;
    for (double v : row) mean += v;
    mean /= row.size();
    for (double v : row) var += (v - mean) * (v - mean);
    var /= row.size();  // biased, as LayerNorm uses
    for (size_t i = 0; i < row.size(); ++i) row[i] = (row[i] - mean) / std::sqrt(var + eps) * g[i] + b[i];
  }
  return y;
}

Rows Add(Rows a, const Rows& b) {
  for (size_t t = 0; t < a.size(); ++t) {
    for (size_t i = 0; i < a[t].size(); ++i) a[t][i] += b[t][i];
  }
  return a;
}

torch::Tensor Param(TransformerImpl& net, const std::string& name) { return net.named_parameters()[name]; }

Rows Attention(TransformerImpl& net, const std::string& p, const Rows& x, int64_t heads, bool causal) {
  const Rows q = Linear(x, Param(net, p + "q.weight"), Param(net, p + "q.bias"));
  const Rows k = Linear(x, Param(net, p + "k.weight"), Param(net, p + "k.bias"));
  const Rows v = Linear(x, Param(net, p + "v.weight"), Param(net, p + "v.bias"));
  const size_t t_len = x.size();
  const int64_t d = static_cast<int64_t>(q[0].size()) / heads;
  Rows context(t_len, std::vector<double>(q[0].size(), 0.0));
  for (int64_t h = 0; h < heads; ++h) {
    for (size_t i = 0; i < t_len; ++i) {
      const size_t keys = causal ? i + 1 : t_len;
      std::vector<double> score(keys);
      double max = -1e300;
      for (size_t j = 0; j < keys; ++j) {
        double s = 0;
        for (int64_t c = 0; c < d; ++c) s += q[i][h * d + c] * k[j][h * d + c];
        score[j] = s / std::sqrt(static_cast<double>(d));
        max = std::max(max, score[j]);
      }
      double total = 0;
      for (double& s : score) total += (s = std::exp(s - max));
      for (size_t j = 0; j < keys; ++j) {
        for (int64_t c = 0; c < d; ++c) context[i][h * d + c] += score[j] / total * v[j][h * d + c];
      }
    }
  }
  return Linear(context, Param(net, p + "o.weight"), Param(net, p + "o.bias"));
}

Rows FeedForward(TransformerImpl& net, const std::string& p, const Rows& x, bool tanh_gelu) {
  Rows h = Linear(x, Param(net, p + "fc1.weight"), Param(net, p + "fc1.bias"));
  for (auto& row : h) {
    for (double& v : row) v = Gelu(v, tanh_gelu);
  }
  return Linear(h, Param(net, p + "fc2.weight"), Param(net, p + "fc2.bias"));
}

// The logits Hugging Face computes for one sequence: [labels] or [tokens, vocab].
std::vector<double> ReferenceLogits(TransformerImpl& net, const std::vector<int64_t>& ids, const Expected& e) {
  const TransformerConfig& c = net.config();
  const bool decoder = c.is_decoder();
  const std::vector<double> word = Vec(net.word->weight), position = Vec(net.position->weight);
  Rows x;
  for (size_t t = 0; t < ids.size(); ++t) {
    std::vector<double> row(c.hidden);
    const int64_t pos = static_cast<int64_t>(t) + e.position_offset;
    for (int64_t i = 0; i < c.hidden; ++i) row[i] = word[ids[t] * c.hidden + i] + position[pos * c.hidden + i];
    if (net.token_type) {
      const std::vector<double> type = Vec(net.token_type->weight[0]);
      for (int64_t i = 0; i < c.hidden; ++i) row[i] += type[i];
    }
    x.push_back(row);
  }
  if (!decoder) x = LayerNorm(x, Param(net, "embedding_ln.weight"), Param(net, "embedding_ln.bias"), e.eps);
  for (int64_t b = 0; b < c.num_layers; ++b) {
    const std::string p = "blocks." + std::to_string(b) + ".";
    auto ln = [&](const char* which, const Rows& in) {
      return LayerNorm(in, Param(net, p + which + ".weight"), Param(net, p + which + ".bias"), e.eps);
    };
    if (decoder) {  // pre-LayerNorm
      x = Add(x, Attention(net, p + "attention.", ln("ln1", x), c.num_heads, true));
      x = Add(x, FeedForward(net, p + "ffn.", ln("ln2", x), e.tanh_gelu));
    } else {
      x = ln("ln1", Add(x, Attention(net, p + "attention.", x, c.num_heads, false)));
      x = ln("ln2", Add(x, FeedForward(net, p + "ffn.", x, e.tanh_gelu)));
    }
  }
  if (decoder) {
    x = LayerNorm(x, Param(net, "final_ln.weight"), Param(net, "final_ln.bias"), e.eps);
    std::vector<double> logits;
    for (const auto& row : x) {
      for (int64_t v = 0; v < c.vocab_size; ++v) {
        double sum = 0;
        for (int64_t i = 0; i < c.hidden; ++i) sum += row[i] * word[v * c.hidden + i];  // tied to the embedding
        logits.push_back(sum);
      }
    }
    return logits;
  }
  Rows pooled = Linear({x[0]}, Param(net, "pool.weight"), Param(net, "pool.bias"));
  for (double& v : pooled[0]) v = e.relu_head ? std::max(v, 0.0) : std::tanh(v);
  return Linear(pooled, Param(net, "classifier.weight"), Param(net, "classifier.bias"))[0];
}

double MaxDifference(const std::vector<double>& a, const torch::Tensor& b) {
  const std::vector<double> bv = Vec(b);
  EXPECT_EQ(a.size(), bv.size());
  double max = 0;
  for (size_t i = 0; i < a.size() && i < bv.size(); ++i) max = std::max(max, std::abs(a[i] - bv[i]));
  return max;
}

class ReferenceForwardTest : public ::testing::TestWithParam<Case> {};

TEST_P(ReferenceForwardTest, MatchesAHandWrittenForwardAndNotTheOtherGelu) {
  const Case& param = GetParam();
  TempDir dir;
  torch::manual_seed(11);
  Transformer net(testing::TinyConfig(param.family));
  {
    // Weights of unit scale, so that pre-activations reach where erf and tanh GELU differ.
    torch::NoGradGuard no_grad;
    for (auto& p : net->parameters()) {
      if (p.dim() >= 2) {
        p.normal_(0, 1.0 / std::sqrt(static_cast<double>(p.size(1))));
      } else {
        p.normal_(0, 0.5);
      }
    }
  }
  ASSERT_TRUE(WriteTransformerCheckpoint(WeightsFromModule(net), dir.path()).ok());
  auto config = nlohmann::json::parse(*ReadFile(dir.Sub("config.json")));
  for (const std::string& key : param.drop) config.erase(key);
  if (param.config.is_object()) config.merge_patch(param.config);
  ASSERT_TRUE(WriteFileAtomic(dir.Sub("config.json"), config.dump()).ok());
  auto model = Model::Load(dir.path());
  ASSERT_TRUE(model.ok()) << model.status();
  TransformerImpl& loaded = *(*model)->impl->transformer()->net;

  const std::vector<int64_t> ids = {5, 17, 42, 8, 33, 2, 59};
  torch::Tensor batch = torch::tensor(ids, torch::kInt64).unsqueeze(0);
  const torch::Tensor logits = testing::TransformerLogits(**model, batch, torch::ones_like(batch));
  const double right = MaxDifference(ReferenceLogits(loaded, ids, param.expected), logits);
  Expected other = param.expected;
  other.tanh_gelu = !other.tanh_gelu;
  const double wrong = MaxDifference(ReferenceLogits(loaded, ids, other), logits);
  std::cerr << param.name << ": max |difference| " << right << " (the other GELU: " << wrong << ")\n";
  EXPECT_LT(right, 2e-5);
  EXPECT_GT(wrong, 20 * right);  // the comparison can tell the two GELUs apart
  if (param.expected.eps >= 0.1) {  // and a wrong epsilon
    Expected tiny = param.expected;
    tiny.eps = 1e-12;
    EXPECT_GT(MaxDifference(ReferenceLogits(loaded, ids, tiny), logits), 20 * right);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Families, ReferenceForwardTest,
    ::testing::Values(
        Case{"bert_default_eps", TransformerFamily::kBert, {{"hidden_act", "gelu"}}, {"layer_norm_eps"}, {false, 1e-12}},
        Case{"bert_gelu_new", TransformerFamily::kBert, {{"hidden_act", "gelu_new"}, {"layer_norm_eps", 0.3}}, {}, {true, 0.3}},
        Case{"bert_gelu_pytorch_tanh", TransformerFamily::kBert, {{"hidden_act", "gelu_pytorch_tanh"}}, {}, {true, 1e-12}},
        Case{"distilbert", TransformerFamily::kDistilBert, {{"activation", "gelu"}}, {}, {false, 1e-12, 0, true}},
        Case{"roberta", TransformerFamily::kRoberta, {{"hidden_act", "gelu"}, {"layer_norm_eps", 0.2}, {"pad_token_id", 1}}, {},
             {false, 0.2, 2}},
        Case{"gpt2_default", TransformerFamily::kGpt2, {}, {"activation_function", "layer_norm_epsilon"}, {true, 1e-5}},
        Case{"gpt2_exact_gelu", TransformerFamily::kGpt2, {{"activation_function", "gelu"}, {"layer_norm_epsilon", 0.25}}, {},
             {false, 0.25}}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace shrink::worker
