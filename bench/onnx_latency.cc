// bench_onnx_latency: a model's ONNX exports timed in ONNX Runtime (onnxruntime-node 1.30, in
// the warm runner process) beside Shrink's own LibTorch runtime, in one run on one machine.
//
//   bench_onnx_latency --model DIR [--policy NAME=POLICY.json]... [--threads 2] [--repeat 20]
//
// Variants: fp32 (the model as it is), uniform int8, uniform 4-bit (round-to-nearest: latency
// does not depend on the values) on the default int8 kernels and on MatMulNBits with fp32 and
// int8 activations, each --policy (e.g. the best searched one, from a job's manifest; default
// export), and the peer: ONNX Runtime's own dynamic int8 of the fp32 export — every MatMul
// with a constant weight rewritten as onnxruntime.quantization.quantize_dynamic writes it
// (DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul, per-tensor symmetric int8 weights),
// which ONNX Runtime fuses into DynamicQuantizeMatMul when it loads.
//
// Transformers: batch 1 and 8 x 128 tokens; GPT-2 also ms per generated token with the cache at
// context 128 (ONNX Runtime; LibTorch has no cache and recomputes 129 tokens), against the
// memory-bandwidth bound: the export's bytes over this machine's read bandwidth (a 1 GiB
// buffer summed by `threads` threads, best of 5). CNN: batch 1 and 32 images. Medians after
// warm-up; a Markdown table on stdout. Never fails on a time.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/args.h"
#include "common/files.h"
#include "common/median.h"
#include "common/policy.h"
#include "onnx/onnx.pb.h"
#include "worker/export/export_model.h"
#include "worker/model/model_impl.h"
#include "worker/model/transformer_backend.h"
#include "worker/runtime/onnxruntime_process.h"
#include "worker/model/cnn_backend.h"

namespace {

using namespace shrink;
using namespace shrink::worker;

constexpr int kWarmup = 3;
constexpr int64_t kSequence = 128;

double MedianMs(const std::function<void()>& run, int repeat) {
  for (int i = 0; i < kWarmup; ++i) run();
  std::vector<double> ms;
  for (int i = 0; i < repeat; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  return Median(ms);
}

// Read bandwidth in bytes/s: a 1 GiB buffer summed by `threads` threads, best of 5.
double ReadBandwidth(int threads) {
  const size_t n = size_t{1} << 28;  // floats
  std::vector<float> buffer(n, 1.0f);
  double best = 0;
  for (int round = 0; round < 5; ++round) {
    std::vector<double> sums(threads, 0);
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        const size_t begin = n / threads * t, end = t + 1 == threads ? n : n / threads * (t + 1);
        float acc[8] = {0};
        for (size_t i = begin; i + 8 <= end; i += 8) {
          for (int j = 0; j < 8; ++j) acc[j] += buffer[i + j];
        }
        for (float a : acc) sums[t] += a;
      });
    }
    for (auto& w : workers) w.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (sums[0] < 0) std::printf("impossible\n");  // keeps the sums alive
    best = std::max(best, static_cast<double>(n * sizeof(float)) / seconds);
  }
  return best;
}

// The raw fp32 values of a 2-D float initializer, or false.
bool FloatMatrix(const onnx::TensorProto& t, std::vector<float>* values) {
  if (t.data_type() != onnx::TensorProto::FLOAT || t.dims_size() != 2) return false;
  const int64_t count = t.dims(0) * t.dims(1);
  if (t.has_raw_data() && static_cast<int64_t>(t.raw_data().size()) == count * 4) {
    values->resize(count);
    std::memcpy(values->data(), t.raw_data().data(), count * 4);
    return true;
  }
  if (t.float_data_size() == count) {
    values->assign(t.float_data().begin(), t.float_data().end());
    return true;
  }
  return false;
}

// onnxruntime.quantization.quantize_dynamic's rewrite of every MatMul whose weight is a constant
// fp32 matrix: per-tensor symmetric int8 weights (scale = max|w| / 127), uint8 activations
// quantized per call. Returns how many MatMuls it rewrote.
int QuantizeDynamicLikeOnnxRuntime(onnx::ModelProto& model) {
  onnx::GraphProto* graph = model.mutable_graph();
  std::map<std::string, int> initializer_index;
  for (int i = 0; i < graph->initializer_size(); ++i) initializer_index[graph->initializer(i).name()] = i;
  google::protobuf::RepeatedPtrField<onnx::NodeProto> nodes;
  std::vector<onnx::TensorProto> added;
  int rewritten = 0;
  for (const onnx::NodeProto& node : graph->node()) {
    std::vector<float> w;
    auto it = node.op_type() == "MatMul" && node.domain().empty() && node.input_size() == 2
                  ? initializer_index.find(node.input(1))
                  : initializer_index.end();
    if (it == initializer_index.end() || !FloatMatrix(graph->initializer(it->second), &w)) {
      *nodes.Add() = node;
      continue;
    }
    const onnx::TensorProto& weight = graph->initializer(it->second);
    float max_abs = 0;
    for (float v : w) max_abs = std::max(max_abs, std::abs(v));
    const float scale = max_abs > 0 ? max_abs / 127.0f : 1.0f;
    std::string q(w.size(), '\0');
    for (size_t i = 0; i < w.size(); ++i) {
      q[i] = static_cast<char>(static_cast<int8_t>(std::clamp(std::nearbyint(w[i] / scale), -127.0f, 127.0f)));
    }
    const std::string p = node.name().empty() ? absl::StrCat("peer", rewritten) : node.name();
    onnx::TensorProto wq;
    wq.set_name(p + ".weight_quantized");
    wq.set_data_type(onnx::TensorProto::INT8);
    wq.add_dims(weight.dims(0));
    wq.add_dims(weight.dims(1));
    wq.set_raw_data(q);
    onnx::TensorProto ws;
    ws.set_name(p + ".weight_scale");
    ws.set_data_type(onnx::TensorProto::FLOAT);
    ws.add_float_data(scale);
    onnx::TensorProto wz;
    wz.set_name(p + ".weight_zero_point");
    wz.set_data_type(onnx::TensorProto::INT8);
    wz.set_raw_data(std::string(1, '\0'));
    added.push_back(wq);
    added.push_back(ws);
    added.push_back(wz);
    auto add = [&](const std::string& op, std::vector<std::string> in, std::vector<std::string> out) {
      onnx::NodeProto* n = nodes.Add();
      n->set_op_type(op);
      n->set_name(absl::StrCat(p, ".", op, nodes.size()));
      for (auto& s : in) n->add_input(s);
      for (auto& s : out) n->add_output(s);
      return n;
    };
    add("DynamicQuantizeLinear", {node.input(0)}, {p + ".x_q", p + ".x_scale", p + ".x_zero_point"});
    add("MatMulInteger", {p + ".x_q", wq.name(), p + ".x_zero_point", wz.name()}, {p + ".y_int32"});
    onnx::NodeProto* cast = add("Cast", {p + ".y_int32"}, {p + ".y_cast"});
    onnx::AttributeProto* to = cast->add_attribute();
    to->set_name("to");
    to->set_type(onnx::AttributeProto::INT);
    to->set_i(onnx::TensorProto::FLOAT);
    add("Mul", {p + ".x_scale", ws.name()}, {p + ".scale"});
    add("Mul", {p + ".y_cast", p + ".scale"}, {node.output(0)});
    ++rewritten;
  }
  graph->mutable_node()->Swap(&nodes);
  for (auto& t : added) *graph->add_initializer() = std::move(t);
  // The fp32 weights no longer used go.
  std::map<std::string, bool> used;
  for (const auto& n : graph->node()) {
    for (const auto& in : n.input()) used[in] = true;
  }
  google::protobuf::RepeatedPtrField<onnx::TensorProto> kept;
  for (auto& t : *graph->mutable_initializer()) {
    if (used.count(t.name())) *kept.Add() = std::move(t);
  }
  graph->mutable_initializer()->Swap(&kept);
  return rewritten;
}

std::map<std::string, RuntimeTensor> Feeds(const std::map<std::string, torch::Tensor>& inputs) {
  std::map<std::string, RuntimeTensor> feeds;
  for (const auto& [name, t] : inputs) {
    torch::Tensor c = t.contiguous();
    feeds[name] = RuntimeTensor{c.scalar_type() == torch::kInt64 ? "int64" : "float32", c.sizes().vec(),
                                std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size())};
  }
  return feeds;
}

// Empty past key/values for every kept block of a decoder.
void AddEmptyCache(const TransformerConfig& c, int64_t batch, std::map<std::string, RuntimeTensor>* feeds) {
  for (int64_t i = 0; i < c.num_layers; ++i) {
    for (const char* part : {"key", "value"}) {
      (*feeds)[absl::StrCat("past_key_values.", i, ".", part)] =
          RuntimeTensor{"float32", {batch, c.layers[i].heads, 0, c.head_dim()}, ""};
    }
  }
}

struct Row {
  std::string variant;
  int64_t onnx_bytes = 0;
  std::vector<double> torch_ms, onnx_ms;  // per batch size
  double torch_token_ms = 0, onnx_token_ms = 0;
};

int Run(int argc, char** argv) {
  const std::vector<FlagSpec> flags = {
      {"model", "model folder (required), uncompressed", ""},
      {"policy", "NAME=POLICY.json, an extra variant (repeatable, comma-separated)", ""},
      {"threads", "intra-op threads in both runtimes", "2"},
      {"repeat", "timed runs per figure (the median is reported)", "20"},
  };
  auto args = Args::Parse(argc, argv, 1, flags);
  if (!args.ok() || args->Get("model").empty()) {
    std::fprintf(stderr, "usage: bench_onnx_latency --model DIR [--policy NAME=FILE,...] [--threads N] [--repeat N]\n%s\n",
                 args.ok() ? "" : args.status().ToString().c_str());
    return 2;
  }
  const int threads = static_cast<int>(args->GetInt("threads").value_or(2));
  const int repeat = static_cast<int>(args->GetInt("repeat").value_or(20));
  torch::NoGradGuard no_grad;
  torch::set_num_threads(threads);
  auto fp32 = Model::Load(args->Get("model"));
  if (!fp32.ok()) return std::fprintf(stderr, "%s\n", fp32.status().ToString().c_str()), 1;
  auto runtime = OnnxRuntimeProcess::Start();
  if (!runtime.ok()) return std::fprintf(stderr, "%s\n", runtime.status().ToString().c_str()), 1;
  auto tmp = MakeTempDir("bench-onnx-");
  if (!tmp.ok()) return 1;

  struct Variant {
    std::string name;
    v1::Policy policy;
    ExportOptions options;
  };
  ExportOptions nbits_fp32, nbits_int8;
  nbits_fp32.low_bit_kernel = nbits_int8.low_bit_kernel = LowBitKernel::kMatMulNBits;
  nbits_fp32.nbits_accuracy_level = 0;
  std::vector<Variant> variants = {{"fp32", v1::Policy()}};
  v1::Policy int8, four;
  int8.mutable_uniform()->set_bits(8);
  four.mutable_uniform()->set_bits(4);
  variants.push_back({"uniform int8", int8});
  variants.push_back({"uniform 4-bit (int8 kernels, default)", four});
  variants.push_back({"uniform 4-bit (MatMulNBits, fp32 activations)", four, nbits_fp32});
  variants.push_back({"uniform 4-bit (MatMulNBits, int8 activations)", four, nbits_int8});
  for (const std::string& spec : std::vector<std::string>(absl::StrSplit(args->Get("policy"), ',', absl::SkipEmpty()))) {
    const size_t eq = spec.find('=');
    auto json = ReadFile(spec.substr(eq + 1));
    auto policy = json.ok() ? ParsePolicyJson(*json) : absl::StatusOr<v1::Policy>(json.status());
    if (eq == std::string::npos || !policy.ok()) {
      std::fprintf(stderr, "--policy %s: %s\n", spec.c_str(), policy.status().ToString().c_str());
      return 2;
    }
    variants.push_back({spec.substr(0, eq), *policy});
  }

  const bool cnn = (*fp32)->impl->cnn() != nullptr;
  const TransformerBackend* transformer = (*fp32)->impl->transformer();
  const bool decoder = transformer != nullptr && transformer->weights.config.is_decoder();
  const std::vector<int64_t> batches = cnn ? std::vector<int64_t>{1, 32} : std::vector<int64_t>{1, 8};
  auto inputs_for = [&](int64_t batch) -> std::map<std::string, torch::Tensor> {
    torch::manual_seed(1);
    if (cnn) return {{"images", torch::randn({batch, 1, 28, 28})}};
    torch::Tensor ids = torch::randint(5, transformer->weights.config.vocab_size, {batch, kSequence}, torch::kInt64);
    return {{"input_ids", ids}, {"attention_mask", torch::ones_like(ids)}};
  };

  std::vector<Row> rows;
  std::string peer_dir;
  for (const Variant& variant : variants) {
    const std::string& name = variant.name;
    const v1::Policy& policy = variant.policy;
    std::unique_ptr<Model> applied;
    if (policy.layers_size() > 0 || policy.has_uniform()) {
      auto a = (*fp32)->Apply(policy);
      if (!a.ok()) return std::fprintf(stderr, "%s: %s\n", name.c_str(), a.status().ToString().c_str()), 1;
      applied = std::move(*a);
    }
    const Model& m = applied ? *applied : **fp32;
    const std::string dir = absl::StrCat(*tmp, "/", rows.size());
    if (auto made = MakeDirs(dir); !made.ok()) return 1;
    auto exported = WriteOnnxExport(m, dir, variant.options);
    if (!exported.ok()) return std::fprintf(stderr, "%s: %s\n", name.c_str(), exported.status().ToString().c_str()), 1;
    if (name == "fp32") peer_dir = dir;
    Row row{name, exported->onnx_bytes};
    auto session = (*runtime)->Load(dir + "/" + kOnnxFile, threads);
    if (!session.ok()) return std::fprintf(stderr, "%s: %s\n", name.c_str(), session.status().ToString().c_str()), 1;
    for (int64_t batch : batches) {
      const auto inputs = inputs_for(batch);
      row.torch_ms.push_back(MedianMs(
          [&] {
            if (cnn) m.impl->cnn()->net->forward(inputs.at("images"));
            else m.impl->transformer()->net->forward(inputs.at("input_ids"), inputs.at("attention_mask"));
          },
          repeat));
      auto feeds = Feeds(inputs);
      if (decoder) AddEmptyCache(m.impl->transformer()->weights.config, batch, &feeds);
      auto run = (*runtime)->Run(session->id, feeds, kWarmup, repeat, /*return_outputs=*/false);
      if (!run.ok()) return std::fprintf(stderr, "%s: %s\n", name.c_str(), run.status().ToString().c_str()), 1;
      row.onnx_ms.push_back(Median(run->latency_ms));
    }
    if (decoder) {
      // The prompt (128 tokens) once, then one token with its cache, timed.
      const auto prompt = inputs_for(1);
      auto feeds = Feeds(prompt);
      AddEmptyCache(m.impl->transformer()->weights.config, 1, &feeds);
      auto first = (*runtime)->Run(session->id, feeds);
      if (!first.ok()) return std::fprintf(stderr, "%s: %s\n", name.c_str(), first.status().ToString().c_str()), 1;
      std::map<std::string, torch::Tensor> step = {{"input_ids", torch::full({1, 1}, int64_t{7}, torch::kInt64)},
                                                   {"attention_mask", torch::ones({1, kSequence + 1}, torch::kInt64)}};
      feeds = Feeds(step);
      for (auto& [out, tensor] : first->outputs) {
        if (out.rfind("present.", 0) == 0) feeds["past_key_values." + out.substr(8)] = tensor;
      }
      auto timed = (*runtime)->Run(session->id, feeds, kWarmup, repeat, false);
      if (!timed.ok()) return std::fprintf(stderr, "%s: %s\n", name.c_str(), timed.status().ToString().c_str()), 1;
      row.onnx_token_ms = Median(timed->latency_ms);
      torch::Tensor ids = torch::cat({prompt.at("input_ids"), step.at("input_ids")}, 1);
      row.torch_token_ms = MedianMs([&] { m.impl->transformer()->net->forward(ids, torch::ones_like(ids)); }, repeat);
    }
    (void)(*runtime)->Unload(session->id);
    rows.push_back(std::move(row));
  }

  // The peer: ONNX Runtime's dynamic int8 of the fp32 export.
  {
    onnx::ModelProto model;
    auto bytes = ReadFile(peer_dir + "/" + kOnnxFile);
    if (!bytes.ok() || !model.ParseFromString(*bytes)) return std::fprintf(stderr, "cannot read the fp32 export\n"), 1;
    const int rewritten = QuantizeDynamicLikeOnnxRuntime(model);
    const std::string path = absl::StrCat(*tmp, "/peer.onnx");
    std::string out;
    model.SerializeToString(&out);
    if (!WriteFileAtomic(path, out).ok()) return 1;
    Row row{absl::StrCat("peer: ORT dynamic int8 of fp32 (", rewritten, " MatMuls)"), static_cast<int64_t>(out.size())};
    auto session = (*runtime)->Load(path, threads);
    if (!session.ok()) return std::fprintf(stderr, "peer: %s\n", session.status().ToString().c_str()), 1;
    for (int64_t batch : batches) {
      auto feeds = Feeds(inputs_for(batch));
      if (decoder) AddEmptyCache(transformer->weights.config, batch, &feeds);
      auto run = (*runtime)->Run(session->id, feeds, kWarmup, repeat, false);
      if (!run.ok()) return std::fprintf(stderr, "peer: %s\n", run.status().ToString().c_str()), 1;
      row.onnx_ms.push_back(Median(run->latency_ms));
      row.torch_ms.push_back(0);
    }
    if (decoder) {
      auto feeds = Feeds(inputs_for(1));
      AddEmptyCache(transformer->weights.config, 1, &feeds);
      auto first = (*runtime)->Run(session->id, feeds);
      if (!first.ok()) return 1;
      feeds = Feeds({{"input_ids", torch::full({1, 1}, int64_t{7}, torch::kInt64)},
                     {"attention_mask", torch::ones({1, kSequence + 1}, torch::kInt64)}});
      for (auto& [out_name, tensor] : first->outputs) {
        if (out_name.rfind("present.", 0) == 0) feeds["past_key_values." + out_name.substr(8)] = tensor;
      }
      auto timed = (*runtime)->Run(session->id, feeds, kWarmup, repeat, false);
      if (timed.ok()) row.onnx_token_ms = Median(timed->latency_ms);
    }
    rows.push_back(std::move(row));
  }
  RemoveAll(*tmp);

  const double bandwidth = decoder ? ReadBandwidth(threads) : 0;
  const std::string unit = cnn ? "images" : absl::StrCat("x ", kSequence, " tokens");
  std::printf("model %s (%s), %d threads, median of %d runs after %d warm-up\n\n", args->Get("model").c_str(),
              (*fp32)->ModelType().c_str(), threads, repeat, kWarmup);
  std::printf("| variant | model.onnx MB |");
  for (int64_t b : batches) std::printf(" LibTorch %lld %s ms | ORT %lld %s ms | ORT speedup vs ORT fp32 |", (long long)b, unit.c_str(), (long long)b, unit.c_str());
  if (decoder) std::printf(" LibTorch ms/token (recompute 129) | ORT ms/token (cache, context 128) | bandwidth bound ms/token |");
  std::printf("\n|---|---|");
  for (size_t i = 0; i < batches.size(); ++i) std::printf("---|---|---|");
  if (decoder) std::printf("---|---|---|");
  std::printf("\n");
  for (const Row& r : rows) {
    std::printf("| %s | %.2f |", r.variant.c_str(), r.onnx_bytes / 1e6);
    for (size_t i = 0; i < batches.size(); ++i) {
      const std::string torch_ms = r.torch_ms[i] > 0 ? absl::StrFormat("%.2f", r.torch_ms[i]) : "–";
      std::printf(" %s | %.2f | %.2f× |", torch_ms.c_str(), r.onnx_ms[i], rows[0].onnx_ms[i] / r.onnx_ms[i]);
    }
    if (decoder) {
      const std::string torch_ms = r.torch_token_ms > 0 ? absl::StrFormat("%.2f", r.torch_token_ms) : "–";
      std::printf(" %s | %.2f | %.2f |", torch_ms.c_str(), r.onnx_token_ms, r.onnx_bytes / bandwidth * 1e3);
    }
    std::printf("\n");
  }
  if (decoder) {
    std::printf("\nread bandwidth: %.1f GB/s (%d threads summing a 1 GiB buffer, best of 5); the bound is the "
                "export's bytes read once per token.\n", bandwidth / 1e9, threads);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
