// Transformers: config.json parsing, HF tensor names and layouts, save/load
// round trips, uneven pruning, head/neuron pruning vs masking, int8/fp16.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/files.h"
#include "common/policy.h"
#include "tests/worker/transformer_test_util.h"
#include "worker/checkpoint/safetensors.h"
#include "worker/checkpoint/safetensors_torch.h"
#include "worker/compress/transformer_compress.h"
#include "worker/eval/evaluate.h"

namespace shrink::worker {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::TinyBatch;
using testing::TinyTransformer;
using testing::TransformerLogits;

const TransformerFamily kFamilies[] = {TransformerFamily::kBert, TransformerFamily::kDistilBert,
                                       TransformerFamily::kRoberta, TransformerFamily::kGpt2};

std::string Error(const std::string& json) {
  auto parsed = ParseTransformerConfig(json, "config.json");
  EXPECT_FALSE(parsed.ok()) << json;
  return std::string(parsed.status().message());
}

TEST(TransformerConfigTest, ParsesEachFamilysFieldNames) {
  auto bert = ParseTransformerConfig(R"({"model_type":"bert","vocab_size":30522,"hidden_size":768,
      "num_hidden_layers":12,"num_attention_heads":12,"intermediate_size":3072,"max_position_embeddings":512,
      "type_vocab_size":2,"id2label":{"0":"neg","1":"pos"}})", "c");
  ASSERT_TRUE(bert.ok()) << bert.status();
  EXPECT_EQ(bert->head_dim(), 64);
  EXPECT_EQ(bert->num_labels, 2);
  EXPECT_EQ(bert->label_names[1], "pos");
  EXPECT_DOUBLE_EQ(bert->layer_norm_eps, 1e-12);
  auto distil = ParseTransformerConfig(R"({"model_type":"distilbert","vocab_size":100,"dim":64,"n_layers":2,
      "n_heads":4,"hidden_dim":128,"max_position_embeddings":64})", "c");
  ASSERT_TRUE(distil.ok()) << distil.status();
  EXPECT_EQ(distil->type_vocab_size, 0);
  EXPECT_EQ(distil->intermediate, 128);
  auto roberta = ParseTransformerConfig(R"({"model_type":"roberta","vocab_size":100,"hidden_size":64,
      "num_hidden_layers":2,"num_attention_heads":4,"intermediate_size":128,"max_position_embeddings":66,
      "type_vocab_size":1,"pad_token_id":1})", "c");
  ASSERT_TRUE(roberta.ok()) << roberta.status();
  EXPECT_EQ(roberta->position_offset(), 2);
  EXPECT_EQ(roberta->max_sequence(), 64);
  auto gpt2 = ParseTransformerConfig(R"({"model_type":"gpt2","vocab_size":50257,"n_embd":768,"n_layer":12,
      "n_head":12,"n_inner":null,"n_positions":1024,"activation_function":"gelu_new"})", "c");
  ASSERT_TRUE(gpt2.ok()) << gpt2.status();
  EXPECT_EQ(gpt2->intermediate, 3072);
  EXPECT_EQ(gpt2->activation, "gelu_new");
  EXPECT_TRUE(gpt2->is_decoder());
}

TEST(TransformerConfigTest, RejectsMissingAndInconsistentFields) {
  const std::string bert = R"("model_type":"bert","vocab_size":10,"hidden_size":32,"num_attention_heads":4,)"
                           R"("intermediate_size":64,"max_position_embeddings":16)";
  EXPECT_THAT(Error("{" + bert + "}"), AllOf(HasSubstr("config.json"), HasSubstr("num_hidden_layers"), HasSubstr("missing")));
  EXPECT_THAT(Error("{" + bert + R"(,"num_hidden_layers":-1})"), HasSubstr("positive integer"));
  // A corrupt count is refused before the per-layer shapes are allocated (found by the fuzzer).
  EXPECT_THAT(Error("{" + bert + R"(,"num_hidden_layers":1099511627776})"),
              AllOf(HasSubstr("num_hidden_layers"), HasSubstr("at most 1024 layers")));
  EXPECT_THAT(Error(R"({"model_type":"bert","vocab_size":10,"hidden_size":30,"num_hidden_layers":1,)"
                    R"("num_attention_heads":4,"intermediate_size":64,"max_position_embeddings":16})"),
              AllOf(HasSubstr("num_attention_heads"), HasSubstr("does not divide")));
  EXPECT_THAT(Error(R"({"model_type":"t5"})"), HasSubstr("\"t5\""));
  EXPECT_THAT(Error("{" + bert + R"(,"num_hidden_layers":1,"hidden_act":"swish"})"), HasSubstr("hidden_act"));
  EXPECT_THAT(Error("{" + bert + R"(,"num_hidden_layers":1,"id2label":{"0":"a"},"num_labels":3})"),
              HasSubstr("num_labels"));
  EXPECT_THAT(Error("{" + bert + R"(,"num_hidden_layers":2,"shrink_layers":[{"heads":4,"intermediate":64}]})"),
              HasSubstr("shrink_layers"));
  EXPECT_THAT(Error("[1]"), HasSubstr("JSON object"));
}

TEST(TransformerTest, SavesHuggingFaceTensorNamesAndLayouts) {
  struct Want {
    TransformerFamily family;
    std::vector<std::string> names;
  };
  const Want wants[] = {
      {TransformerFamily::kBert,
       {"bert.embeddings.word_embeddings.weight", "bert.embeddings.token_type_embeddings.weight",
        "bert.embeddings.LayerNorm.weight", "bert.encoder.layer.1.attention.self.query.weight",
        "bert.encoder.layer.0.attention.output.dense.bias", "bert.encoder.layer.0.attention.output.LayerNorm.bias",
        "bert.encoder.layer.0.intermediate.dense.weight", "bert.encoder.layer.0.output.LayerNorm.weight",
        "bert.pooler.dense.weight", "classifier.weight"}},
      {TransformerFamily::kDistilBert,
       {"distilbert.embeddings.position_embeddings.weight", "distilbert.transformer.layer.0.attention.q_lin.weight",
        "distilbert.transformer.layer.1.attention.out_lin.bias", "distilbert.transformer.layer.0.ffn.lin1.weight",
        "distilbert.transformer.layer.0.sa_layer_norm.weight", "distilbert.transformer.layer.0.output_layer_norm.bias",
        "pre_classifier.weight", "classifier.bias"}},
      {TransformerFamily::kRoberta,
       {"roberta.embeddings.word_embeddings.weight", "roberta.encoder.layer.0.attention.self.value.bias",
        "classifier.dense.weight", "classifier.out_proj.weight"}},
      {TransformerFamily::kGpt2,
       {"transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight",
        "transformer.h.1.attn.c_attn.weight", "transformer.h.0.attn.c_proj.weight", "transformer.h.0.mlp.c_fc.bias",
        "transformer.h.0.mlp.c_proj.weight", "transformer.ln_f.bias"}},
  };
  for (const auto& want : wants) {
    TempDir dir;
    ASSERT_NE(TinyTransformer(want.family, dir.path()), nullptr);
    auto file = SafetensorsFile::Open(dir.Sub("model.safetensors"));
    ASSERT_TRUE(file.ok()) << file.status();
    for (const auto& name : want.names) EXPECT_NE((*file)->Find(name), nullptr) << name;
    if (want.family == TransformerFamily::kGpt2) {
      // Conv1D layout: [in, out]; c_attn fuses q, k, v; the LM head is tied (not stored).
      EXPECT_EQ((*file)->Find("transformer.h.0.attn.c_attn.weight")->shape, (std::vector<int64_t>{32, 96}));
      EXPECT_EQ((*file)->Find("transformer.h.0.mlp.c_fc.weight")->shape, (std::vector<int64_t>{32, 64}));
      EXPECT_EQ((*file)->Find("lm_head.weight"), nullptr);
    } else {
      EXPECT_EQ((*file)->Find(want.names[3])->shape.size(), 2u);
    }
    auto config = nlohmann::json::parse(*ReadFile(dir.Sub("config.json")));
    EXPECT_EQ(config["model_type"], FamilyName(want.family));
    EXPECT_EQ(config["shrink_layers"].size(), 2u);
  }
}

TEST(TransformerTest, SaveAndLoadGiveIdenticalOutputsForEveryFamily) {
  for (TransformerFamily family : kFamilies) {
    TempDir dir;
    auto model = TinyTransformer(family, dir.Sub("a"));
    ASSERT_NE(model, nullptr);
    auto [ids, mask] = TinyBatch();
    torch::Tensor before = TransformerLogits(*model, ids, mask);
    EXPECT_EQ(before.size(0), 2);
    ASSERT_TRUE(model->Save(dir.Sub("b")).ok());
    auto reloaded = Model::Load(dir.Sub("b"));
    ASSERT_TRUE(reloaded.ok()) << reloaded.status();
    EXPECT_TRUE(torch::equal(before, TransformerLogits(**reloaded, ids, mask))) << FamilyName(family);
    EXPECT_EQ(*ReadFile(dir.Sub("a/model.safetensors")), *ReadFile(dir.Sub("b/model.safetensors")));
    // The description's totals are the module's parameters and the bytes on disk.
    int64_t params = 0;
    for (const auto& p : (*reloaded)->impl->transformer()->net->parameters()) params += p.numel();
    EXPECT_EQ((*reloaded)->Describe().params(), params) << FamilyName(family);
    EXPECT_EQ((*reloaded)->Describe().bytes(), *DirectoryBytes(dir.Sub("b")));
    EXPECT_EQ((*reloaded)->ModelType(), FamilyName(family));
  }
}

TEST(TransformerTest, BaseModelsLoadWithoutPrefixAndOldLayerNormNames) {
  TempDir dir;
  auto model = TinyTransformer(TransformerFamily::kBert, dir.Sub("a"));
  ASSERT_NE(model, nullptr);
  auto file = SafetensorsFile::Open(dir.Sub("a/model.safetensors"));
  ASSERT_TRUE(file.ok());
  // Rewrite as BertModel saves it (no "bert." prefix, no classifier) with gamma/beta LayerNorms
  // and a pretraining head HF would ignore.
  std::map<std::string, SafetensorsTensor> tensors;
  for (const auto& [name, view] : (*file)->tensors()) {
    if (name.rfind("classifier", 0) == 0) continue;
    std::string renamed = name.substr(5);
    if (renamed.size() > 16 && renamed.substr(renamed.size() - 16) == "LayerNorm.weight") {
      renamed = renamed.substr(0, renamed.size() - 6) + "gamma";
    }
    tensors[renamed] = SafetensorsTensor{view.dtype, view.shape, std::string(reinterpret_cast<const char*>(view.data), view.size)};
  }
  tensors["cls.predictions.bias"] = SafetensorsTensor{SafetensorsDtype::kF32, {60}, std::string(240, '\0')};
  ASSERT_TRUE(MakeDirs(dir.Sub("base")).ok());
  ASSERT_TRUE(WriteSafetensors(dir.Sub("base/model.safetensors"), tensors).ok());
  ASSERT_TRUE(WriteFileAtomic(dir.Sub("base/config.json"), *ReadFile(dir.Sub("a/config.json"))).ok());
  auto base = Model::Load(dir.Sub("base"));
  ASSERT_TRUE(base.ok()) << base.status();
  // The encoder is the same; only the (re-initialised) classifier differs.
  auto [ids, mask] = TinyBatch();
  torch::NoGradGuard no_grad;
  torch::Tensor a = model->impl->transformer()->net->Encode(ids, mask);
  torch::Tensor b = (*base)->impl->transformer()->net->Encode(ids, mask);
  EXPECT_TRUE(torch::equal(a, b));
}

TEST(TransformerTest, CausalMaskPaddingAndRobertaPositions) {
  TempDir dir;
  auto gpt2 = TinyTransformer(TransformerFamily::kGpt2, dir.Sub("g"));
  ASSERT_NE(gpt2, nullptr);
  auto [ids, mask] = TinyBatch();
  torch::Tensor changed = ids.clone();
  changed.index_put_({0, 6}, (ids[0][6].item<int64_t>() + 1) % 60);
  torch::Tensor a = TransformerLogits(*gpt2, ids, mask), b = TransformerLogits(*gpt2, changed, mask);
  EXPECT_TRUE(torch::allclose(a.narrow(1, 0, 6), b.narrow(1, 0, 6)));  // the past does not see the future
  EXPECT_FALSE(torch::allclose(a.narrow(1, 6, 1), b.narrow(1, 6, 1)));

  // Padding after the text does not change an encoder's logits.
  for (TransformerFamily family : {TransformerFamily::kBert, TransformerFamily::kRoberta}) {
    auto encoder = TinyTransformer(family, dir.Sub(FamilyName(family)));
    ASSERT_NE(encoder, nullptr);
    const int64_t pad = encoder->impl->transformer()->weights.config.pad_token_id;
    torch::Tensor padded = torch::cat({ids, torch::full({2, 3}, pad, torch::kInt64)}, 1);
    torch::Tensor padded_mask = torch::cat({mask, torch::zeros({2, 3}, torch::kInt64)}, 1);
    EXPECT_TRUE(torch::allclose(TransformerLogits(*encoder, ids, mask), TransformerLogits(*encoder, padded, padded_mask),
                                1e-5, 1e-6))
        << FamilyName(family);
  }
  // RoBERTa numbers positions from padding_idx + 1: the first token uses row 2 of the table.
  auto roberta = TinyTransformer(TransformerFamily::kRoberta, dir.Sub("r"));
  Transformer net = roberta->impl->transformer()->net;
  torch::Tensor before = TransformerLogits(*roberta, ids, mask);
  {
    torch::NoGradGuard no_grad;
    net->position->weight[0].add_(1.0);  // rows 0 and 1 are never used for tokens
    net->position->weight[1].add_(1.0);
  }
  EXPECT_TRUE(torch::equal(before, TransformerLogits(*roberta, ids, mask)));
  {
    torch::NoGradGuard no_grad;
    net->position->weight[2].add_(1.0);
  }
  EXPECT_FALSE(torch::allclose(before, TransformerLogits(*roberta, ids, mask)));
}

TEST(TransformerTest, RejectsBrokenCheckpoints) {
  TempDir dir;
  ASSERT_NE(TinyTransformer(TransformerFamily::kBert, dir.path()), nullptr);
  const std::string config = *ReadFile(dir.Sub("config.json"));
  auto file = SafetensorsFile::Open(dir.Sub("model.safetensors"));
  ASSERT_TRUE(file.ok());
  std::map<std::string, SafetensorsTensor> good;
  for (const auto& [name, view] : (*file)->tensors()) {
    good[name] = SafetensorsTensor{view.dtype, view.shape, std::string(reinterpret_cast<const char*>(view.data), view.size)};
  }
  auto load_with = [&](const std::map<std::string, SafetensorsTensor>& tensors, const std::string& config_text) {
    TempDir bad;
    EXPECT_TRUE(WriteSafetensors(bad.Sub("model.safetensors"), tensors).ok());
    EXPECT_TRUE(WriteFileAtomic(bad.Sub("config.json"), config_text).ok());
    auto model = Model::Load(bad.path());
    EXPECT_FALSE(model.ok());
    return std::string(model.status().message());
  };
  auto without = good;
  without.erase("bert.encoder.layer.1.attention.self.key.bias");
  EXPECT_THAT(load_with(without, config), AllOf(HasSubstr("missing tensor"), HasSubstr("layer.1.attention.self.key.bias")));
  auto extra = good;
  extra["bert.encoder.layer.0.extra.weight"] = good["classifier.bias"];
  EXPECT_THAT(load_with(extra, config), AllOf(HasSubstr("unexpected tensor"), HasSubstr("extra.weight")));
  auto odd = good;  // 12 query rows is not a whole number of 8-wide heads
  odd["bert.encoder.layer.0.attention.self.query.weight"] = SafetensorsTensor{SafetensorsDtype::kF32, {12, 32}, std::string(12 * 32 * 4, '\0')};
  EXPECT_THAT(load_with(odd, config), HasSubstr("not a multiple of the head size"));
  auto narrow_key = good;  // key rows disagree with the query's
  narrow_key["bert.encoder.layer.0.attention.self.key.weight"] = SafetensorsTensor{SafetensorsDtype::kF32, {16, 32}, std::string(16 * 32 * 4, '\0')};
  EXPECT_THAT(load_with(narrow_key, config), AllOf(HasSubstr("attention.k.weight"), HasSubstr("expected [32, 32]")));
  auto json = nlohmann::json::parse(config);
  json["vocab_size"] = 61;
  EXPECT_THAT(load_with(good, json.dump()), AllOf(HasSubstr("vocab_size"), HasSubstr("60 rows")));
  json = nlohmann::json::parse(config);
  json["shrink_layers"][1]["heads"] = 2;
  EXPECT_THAT(load_with(good, json.dump()), AllOf(HasSubstr("shrink_layers[1]"), HasSubstr("4 heads")));
  json = nlohmann::json::parse(config);
  json["model_type"] = "gpt2";
  json["n_embd"] = 32, json["n_layer"] = 2, json["n_head"] = 4, json["n_positions"] = 40;
  EXPECT_THAT(load_with(good, json.dump()), HasSubstr("no word embeddings"));
}

TEST(TransformerTest, UnevenlyPrunedModelSavesAndReloads) {
  for (TransformerFamily family : kFamilies) {
    TempDir dir;
    auto model = TinyTransformer(family, dir.Sub("a"));
    ASSERT_NE(model, nullptr);
    const auto description = model->Describe();
    v1::Policy policy;
    for (const auto& layer : description.layers()) {
      auto* action = policy.add_layers();
      action->set_name(layer.name());
      action->set_bits(32);
    }
    // Layer 0 loses 3 of 4 heads, layer 1 a quarter of its FFN neurons.
    policy.mutable_layers(1)->set_prune(0.75);
    policy.mutable_layers(4)->set_prune(0.25);
    auto pruned = model->Apply(policy);
    ASSERT_TRUE(pruned.ok()) << pruned.status();
    auto d = (*pruned)->Describe();
    EXPECT_EQ(d.layers(1).out_features(), 1);
    EXPECT_EQ(d.layers(3).out_features(), 4);
    EXPECT_EQ(d.layers(4).out_features(), 48);
    EXPECT_LT(d.params(), description.params());
    ASSERT_TRUE((*pruned)->Save(dir.Sub("p")).ok());
    auto config = nlohmann::json::parse(*ReadFile(dir.Sub("p/config.json")));
    EXPECT_EQ(config["shrink_layers"][0]["heads"], 1);
    EXPECT_EQ(config["shrink_layers"][1]["intermediate"], 48);
    EXPECT_TRUE(config["shrink_compressed"].get<bool>());
    auto reloaded = Model::Load(dir.Sub("p"));
    ASSERT_TRUE(reloaded.ok()) << reloaded.status();
    auto [ids, mask] = TinyBatch();
    EXPECT_TRUE(torch::equal(TransformerLogits(**pruned, ids, mask), TransformerLogits(**reloaded, ids, mask)))
        << FamilyName(family);
    EXPECT_EQ((*reloaded)->Describe().params(), d.params());
    // A compressed model is not compressed again.
    EXPECT_EQ((*reloaded)->Apply(policy).status().code(), absl::StatusCode::kFailedPrecondition);
  }
}

TEST(TransformerTest, PruningComputesWhatMaskingComputes) {
  for (TransformerFamily family : {TransformerFamily::kBert, TransformerFamily::kGpt2}) {
    TempDir dir;
    auto model = TinyTransformer(family, dir.path());
    ASSERT_NE(model, nullptr);
    TransformerBackend* original = model->impl->transformer();
    const auto groups = TransformerLayerGroups(original->weights.config);
    const TransformerLayerGroup& attention0 = groups[1];
    const TransformerLayerGroup& ffn1 = groups[4];
    ASSERT_EQ(attention0.kind, "attention");
    ASSERT_EQ(ffn1.kind, "ffn");
    torch::Tensor heads = KeptByImportance(UnitImportance(original->weights, attention0), 0.5);
    torch::Tensor neurons = KeptByImportance(UnitImportance(original->weights, ffn1), 0.5);
    ASSERT_EQ(heads.size(0), 2);
    ASSERT_EQ(neurons.size(0), 32);
    // The kept heads are the two with the largest weight magnitude.
    torch::Tensor importance = UnitImportance(original->weights, attention0);
    EXPECT_GE(importance.index_select(0, heads).min().item<double>(),
              importance.max().item<double>() * 0 + std::get<0>(importance.sort(0, true))[1].item<double>());

    v1::Policy policy;
    for (const auto& group : groups) {
      auto* action = policy.add_layers();
      action->set_name(group.name);
      action->set_prune(group.name == attention0.name || group.name == ffn1.name ? 0.5 : 0.0);
    }
    auto pruned = model->Apply(policy);
    ASSERT_TRUE(pruned.ok()) << pruned.status();
    EXPECT_EQ((*pruned)->impl->transformer()->net->block_list[0]->attention->heads, 2);

    // The masked original: removed heads' attention zeroed, removed neurons' fc1 rows zeroed.
    Transformer masked = original->net;
    torch::Tensor head_mask = torch::zeros({4});
    head_mask.index_fill_(0, heads, 1.0);
    masked->block_list[0]->attention->head_mask = head_mask;
    TransformerWeights zeroed = original->weights;
    torch::Tensor keep = torch::zeros({64}, torch::kBool);
    keep.index_fill_(0, neurons, true);
    torch::Tensor w = zeroed.tensors["blocks.1.ffn.fc1.weight"].clone(), b = zeroed.tensors["blocks.1.ffn.fc1.bias"].clone();
    w.index_put_({keep.logical_not()}, 0.0);
    b.index_put_({keep.logical_not()}, 0.0);
    {
      torch::NoGradGuard no_grad;
      masked->block_list[1]->ffn->fc1->weight.copy_(w);
      masked->block_list[1]->ffn->fc1->bias.copy_(b);
    }
    auto [ids, mask] = TinyBatch();
    torch::NoGradGuard no_grad;
    torch::Tensor expected = masked->forward(ids, mask);
    torch::Tensor actual = (*pruned)->impl->transformer()->net->forward(ids, mask);
    masked->block_list[0]->attention->head_mask = torch::Tensor();
    EXPECT_TRUE(torch::allclose(expected, actual, 1e-5, 1e-6))
        << FamilyName(family) << " max diff " << (expected - actual).abs().max().item<double>();
  }
}

TEST(TransformerTest, Int8AndFp16ShrinkAndReloadIdentically) {
  for (TransformerFamily family : {TransformerFamily::kDistilBert, TransformerFamily::kGpt2}) {
    TempDir dir;
    auto model = TinyTransformer(family, dir.Sub("a"));
    ASSERT_NE(model, nullptr);
    auto policy = ParsePolicyJson(R"({"uniform": {"prune": 0, "bits": 8}})");
    ASSERT_TRUE(policy.ok());
    auto int8 = model->Apply(*policy);
    ASSERT_TRUE(int8.ok()) << int8.status();
    ASSERT_TRUE((*int8)->Save(dir.Sub("q")).ok());
    auto reloaded = Model::Load(dir.Sub("q"));
    ASSERT_TRUE(reloaded.ok()) << reloaded.status();
    auto [ids, mask] = TinyBatch();
    torch::Tensor fp32 = TransformerLogits(*model, ids, mask);
    torch::Tensor q = TransformerLogits(**int8, ids, mask);
    EXPECT_TRUE(torch::equal(q, TransformerLogits(**reloaded, ids, mask)));
    EXPECT_LT((q - fp32).abs().max().item<double>(), 0.1 * fp32.abs().max().item<double>() + 0.05);
    EXPECT_TRUE((*reloaded)->impl->transformer()->net->block_list[0]->ffn->fc1->int8 != nullptr);
    EXPECT_LT((*int8)->Describe().bytes(), 0.4 * model->Describe().bytes());
    EXPECT_EQ((*int8)->Describe().bytes(), *DirectoryBytes(dir.Sub("q")));

    auto half = model->Apply(*ParsePolicyJson(R"({"uniform": {"prune": 0, "bits": 16}})"));
    ASSERT_TRUE(half.ok()) << half.status();
    ASSERT_TRUE((*half)->Save(dir.Sub("h")).ok());
    auto half_reloaded = Model::Load(dir.Sub("h"));
    ASSERT_TRUE(half_reloaded.ok()) << half_reloaded.status();
    EXPECT_TRUE(torch::equal(TransformerLogits(**half, ids, mask), TransformerLogits(**half_reloaded, ids, mask)));
    EXPECT_LT((*half)->Describe().bytes(), 0.6 * model->Describe().bytes());
    EXPECT_TRUE(torch::allclose(TransformerLogits(**half, ids, mask), fp32, 1e-2, 1e-2));
  }
}

TEST(TransformerTest, EvaluatesAndProfilesOnSyntheticInput) {
  TempDir dir;
  auto model = TinyTransformer(TransformerFamily::kBert, dir.path());
  ASSERT_NE(model, nullptr);
  EvalOptions eval;
  eval.threads = 1;
  eval.timed_runs = 2;
  eval.warmup_runs = 1;
  eval.sequence_length = 16;
  auto metrics = Evaluate(*model, TaskData(), "", eval);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_GT(metrics->latency_ms(), 0);
  EXPECT_EQ(metrics->latency_batch(), eval.text_latency_batch);
  EXPECT_EQ(metrics->bytes(), *DirectoryBytes(dir.path()));
  EXPECT_EQ(metrics->params(), model->Describe().params());
  auto profile = Profile(*model, TaskData(), eval, ProfileOptions());
  ASSERT_TRUE(profile.ok()) << profile.status();
  ASSERT_EQ(profile->layers_size(), 6);  // embeddings, 2 x (attention, ffn), head
  double shares = 0;
  for (const auto& layer : profile->layers()) {
    EXPECT_GE(layer.latency_share(), 0);
    shares += layer.latency_share();
  }
  EXPECT_NEAR(shares, 1.0, 1e-6);
  EXPECT_EQ(profile->layers(1).name(), "encoder.layer.0.attention");
  EXPECT_TRUE(profile->layers(1).prunable());
  EXPECT_FALSE(profile->layers(0).prunable());
}

TEST(TransformerTest, InitPresetsWriteLoadableModels) {
  TempDir dir;
  ASSERT_TRUE(InitModel("bert", "tiny", 1, dir.Sub("bert")).ok());
  ASSERT_TRUE(InitModel("gpt2", "tiny", 1, dir.Sub("gpt2")).ok());
  ASSERT_TRUE(InitModel("cnn", "reference", 1, dir.Sub("cnn")).ok());
  for (const char* arch : {"bert", "gpt2", "cnn"}) {
    auto model = Model::Load(dir.Sub(arch));
    ASSERT_TRUE(model.ok()) << arch << ": " << model.status();
  }
  EXPECT_EQ((*Model::Load(dir.Sub("gpt2")))->ModelType(), "gpt2");
  // "deep" is the reference shape with twice the blocks.
  ASSERT_TRUE(InitModel("bert", "deep", 1, dir.Sub("deep")).ok());
  auto deep = nlohmann::json::parse(*ReadFile(dir.Sub("deep/config.json")));
  EXPECT_EQ(deep["num_hidden_layers"], 8);
  EXPECT_EQ(deep["hidden_size"], 256);
  EXPECT_TRUE(Model::Load(dir.Sub("deep")).ok());
  EXPECT_FALSE(InitModel("bert", "huge", 1, dir.Sub("x")).ok());
  EXPECT_FALSE(InitModel("lstm", "tiny", 1, dir.Sub("x")).ok());
}

}  // namespace
}  // namespace shrink::worker
