// The same compression passes on a GPU and on the CPU: for random CNN / BERT / GPT-2
// models and a set of uniform policies, checks that the compressed files are
// identical wherever the model computes, that the logits agree, and times fp32
// against fp16 and the quantized paths on a GPU for the BERT-base / GPT-2-small
// shapes. Prints Markdown tables (BENCHMARKS.md) and exits 1 when a check fails;
// times never fail it. Needs a CUDA LibTorch and a GPU: bench/cuda_check.sh.
#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/args.h"
#include "common/files.h"
#include "common/policy.h"
#include "worker/nn/device.h"
#include "worker/model/model.h"
#include "worker/model/model_impl.h"
#include "worker/nn/torch_device.h"
#include "worker/model/transformer_backend.h"
#include "worker/compress/transformer_compress.h"
#include "worker/eval/evaluate.h"
#include "worker/model/cnn_backend.h"
#include "worker/nn/cnn.h"

namespace shrink::worker {
namespace {

int failures = 0;

void Check(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::printf("CHECK FAILED: %s\n", what.c_str());
  }
}

template <typename T>
T OrDie(absl::StatusOr<T> value, const std::string& what) {
  if (!value.ok()) {
    std::fprintf(stderr, "%s: %s\n", what.c_str(), std::string(value.status().message()).c_str());
    std::exit(1);
  }
  return std::move(*value);
}

void OrDie(const absl::Status& status, const std::string& what) {
  if (!status.ok()) {
    std::fprintf(stderr, "%s: %s\n", what.c_str(), std::string(status.message()).c_str());
    std::exit(1);
  }
}

v1::Policy Uniform(double prune, int bits) {
  return OrDie(ParsePolicyJson(absl::StrFormat(R"({"uniform": {"prune": %g, "bits": %d}})", prune, bits)), "policy");
}

// Logits of a loaded model on fixed synthetic inputs, back on the CPU as fp32.
torch::Tensor Logits(const Model& model, int64_t vocab) {
  torch::NoGradGuard no_grad;
  const torch::Device device = OrDie(ParseDevice(model.Device()), "device");
  if (auto* cnn = model.impl->cnn()) {
    auto generator = at::detail::createCPUGenerator(3);
    torch::Tensor images = at::randn({256, 1, 28, 28}, generator);
    Cnn net = cnn->net;
    return net->forward(images.to(device)).to(torch::kCPU, torch::kFloat32);
  }
  auto generator = at::detail::createCPUGenerator(4);
  torch::Tensor ids = at::randint(vocab, {16, 64}, generator, torch::kInt64);
  Transformer net = model.impl->transformer()->net;
  return net->forward(ids.to(device), torch::ones_like(ids).to(device)).to(torch::kCPU, torch::kFloat32);
}

// Every file of `a` has the same bytes in `b`.
bool SameFiles(const std::string& a, const std::string& b) {
  for (const char* name : {"config.json", "model.safetensors"}) {
    auto x = ReadFile(a + "/" + name), y = ReadFile(b + "/" + name);
    if (!x.ok() || !y.ok() || *x != *y) return false;
  }
  return true;
}

struct Agreement {
  double relative_error = 0;  // max |cpu - gpu| / max |cpu|
  double top1 = 0;            // fraction of rows whose argmax agrees
};

Agreement Compare(const torch::Tensor& cpu, const torch::Tensor& gpu) {
  Agreement a;
  a.relative_error = ((cpu - gpu).abs().max() / cpu.abs().max().clamp_min(1e-12)).item<double>();
  a.top1 = cpu.argmax(-1).eq(gpu.argmax(-1)).to(torch::kFloat64).mean().item<double>();
  return a;
}

// Part 1: compressed files identical, logits agree (tiny shapes, so it is quick).
void AgreementTable(const std::string& device, const std::string& root) {
  std::printf("\n| model | policy | bytes | files identical cpu/gpu | max abs logit diff / max abs logit | top-1 agree |\n");
  std::printf("|---|---|---|---|---|---|\n");
  struct Case {
    std::string arch, preset;
    int64_t vocab;
  };
  const std::vector<Case> cases = {{"cnn", "reference", 0}, {"bert", "tiny", 0}, {"gpt2", "tiny", 0}};
  struct P {
    std::string name;
    double prune;
    int bits;
    double tolerance;  // relative logit error allowed on the GPU
  };
  // fp32 layers: float rounding (and cuDNN's TF32 convolutions, on by default). Quantized layers
  // differ more: the CPU's int8 kernels also quantize activations, the GPU's fp16 GEMMs do not.
  const std::vector<P> policies = {{"fp32", 0, 32, 1e-2},          {"prune 0.5", 0.5, 32, 1e-2},
                                   {"int8", 0, 8, 0.2},            {"prune 0.25 + int8", 0.25, 8, 0.2},
                                   {"4-bit", 0, 4, 0.2},           {"fp16", 0, 16, 1e-2}};
  for (const Case& c : cases) {
    const std::string dir = root + "/" + c.arch;
    OrDie(InitModel(c.arch, c.preset, 11, dir), "init " + c.arch);
    auto cpu_base = OrDie(Model::Load(dir, "cpu"), "load cpu");
    auto gpu_base = OrDie(Model::Load(dir, device), "load " + device);
    const int64_t vocab = c.arch == "cnn" ? 0 : cpu_base->impl->transformer()->weights.config.vocab_size;
    for (const P& p : policies) {
      const v1::Policy policy = Uniform(p.prune, p.bits);
      auto cpu = OrDie(cpu_base->Apply(policy), "apply cpu");
      auto gpu = OrDie(gpu_base->Apply(policy), "apply " + device);
      Check(gpu->Device() == device, "the compressed model stays on " + device);
      const std::string a = dir + "-cpu", b = dir + "-gpu";
      OrDie(cpu->Save(a), "save");
      OrDie(gpu->Save(b), "save");
      const bool same = SameFiles(a, b);
      const int64_t bytes = OrDie(DirectoryBytes(a), "bytes");
      RemoveAll(a);
      RemoveAll(b);
      Agreement agree = Compare(Logits(*cpu, vocab), Logits(*gpu, vocab));
      std::printf("| %s %s | %s | %lld | %s | %.2e | %.1f%% |\n", c.arch.c_str(), c.preset.c_str(), p.name.c_str(),
                  static_cast<long long>(bytes), same ? "yes" : "NO", agree.relative_error, 100 * agree.top1);
      Check(same, c.arch + " " + p.name + ": files differ between cpu and " + device);
      Check(agree.relative_error <= p.tolerance, c.arch + " " + p.name + ": logits differ beyond tolerance");
    }
  }
}

// Part 2: GPTQ calibration inputs recorded on the GPU instead of the CPU.
void CalibrationCheck(const std::string& device, const std::string& root) {
  const std::string dir = root + "/bert-calib";
  OrDie(InitModel("bert", "tiny", 12, dir), "init");
  auto model = OrDie(Model::Load(dir, "cpu"), "load");
  const TransformerWeights& weights = model->impl->transformer()->weights;
  std::vector<CalibrationBatch> batches;
  auto generator = at::detail::createCPUGenerator(5);
  for (int i = 0; i < 4; ++i) {
    torch::Tensor ids = at::randint(weights.config.vocab_size, {32, 48}, generator, torch::kInt64);
    batches.push_back({ids, torch::ones_like(ids)});
  }
  std::vector<v1::LayerAction> actions = OrDie(ResolvePolicy(Uniform(0.25, 4), model->Describe()), "resolve");
  const torch::Device gpu = OrDie(ParseDevice(device), "device");
  auto on_cpu = OrDie(CompressTransformer(weights, actions, batches, PruneImportance::kActivation, {}, torch::kCPU), "cpu");
  auto on_gpu = OrDie(CompressTransformer(weights, actions, batches, PruneImportance::kActivation, {}, gpu), "gpu");
  const std::string a = OrDie(TransformerSafetensorsBytes(on_cpu), "bytes");
  const std::string b = OrDie(TransformerSafetensorsBytes(on_gpu), "bytes");
  int64_t differing = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) differing += a[i] != b[i];
  auto x = OrDie(MakeTransformerBackend(on_cpu, nullptr, torch::kCPU), "build");
  auto y = OrDie(MakeTransformerBackend(on_gpu, nullptr, torch::kCPU), "build");
  auto generator2 = at::detail::createCPUGenerator(6);
  torch::Tensor ids = at::randint(weights.config.vocab_size, {16, 48}, generator2, torch::kInt64);
  torch::NoGradGuard no_grad;
  Agreement agree = Compare(x->net->forward(ids, torch::ones_like(ids)), y->net->forward(ids, torch::ones_like(ids)));
  std::printf("\nGPTQ 4-bit + activation-ranked 25%% pruning, calibration recorded on cpu vs %s (bert tiny):\n",
              device.c_str());
  std::printf("| safetensors bytes cpu | bytes gpu | bytes that differ | max abs logit diff / max (both on cpu) | top-1 agree |\n");
  std::printf("|---|---|---|---|---|\n");
  std::printf("| %zu | %zu | %lld (%.3f%%) | %.2e | %.1f%% |\n", a.size(), b.size(), static_cast<long long>(differing),
              100.0 * static_cast<double>(differing) / static_cast<double>(std::max<size_t>(1, a.size())),
              agree.relative_error, 100 * agree.top1);
  Check(a.size() == b.size(), "GPTQ on the GPU changes the file size");
  Check(agree.top1 >= 0.9, "GPTQ calibrated on the GPU predicts differently");
}

// Part 3: latency of the base shapes, fp32 vs fp16 (autocast) and the stored-quantized paths.
void LatencyTable(const std::string& device, const std::string& root, bool with_cpu) {
  std::printf("\n| shape | device | computes as | latency ms (median of 15) | batch x tokens |\n|---|---|---|---|---|\n");
  EvalOptions eval;
  eval.threads = 0;
  eval.text_latency_batch = 8;
  eval.sequence_length = 128;
  eval.warmup_runs = 3;
  eval.timed_runs = 15;
  for (const auto& [arch, preset] : std::vector<std::pair<std::string, std::string>>{{"bert", "base"}, {"gpt2", "small"}}) {
    const std::string dir = root + "/" + arch + "-" + preset;
    OrDie(InitModel(arch, preset, 13, dir), "init");
    const std::string shape = arch + "-" + preset;
    auto row = [&](const std::string& on, const std::string& what, const Model& model) {
      auto metrics = OrDie(Evaluate(model, TaskData(), "", eval), "evaluate");
      std::printf("| %s | %s | %s | %.2f | %d x %d |\n", shape.c_str(), on.c_str(), what.c_str(), metrics.latency_ms(),
                  eval.text_latency_batch, eval.sequence_length);
      std::fflush(stdout);
    };
    auto base = OrDie(Model::Load(dir, device), "load");
    row(device, "fp32", *base);
    {
      // fp16 for every matrix product (LibTorch's autocast), weights stay fp32.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
      at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
      at::autocast::set_enabled(true);
#endif
      row(device, "fp32 weights, autocast fp16", *base);
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
      at::autocast::set_autocast_enabled(at::kCUDA, false);
#else
      at::autocast::set_enabled(false);
#endif
      at::autocast::clear_cache();
    }
    row(device, "policy bits 16 (fp16 stored, fp32 compute)", *OrDie(base->Apply(Uniform(0, 16)), "apply"));
    row(device, "policy bits 8 (int8 stored, fp16 GEMMs)", *OrDie(base->Apply(Uniform(0, 8)), "apply"));
    row(device, "policy bits 4 (4-bit stored, fp16 GEMMs)", *OrDie(base->Apply(Uniform(0, 4)), "apply"));
    row(device, "policy prune 0.5 + bits 8", *OrDie(base->Apply(Uniform(0.5, 8)), "apply"));
    if (with_cpu) {
      auto cpu = OrDie(Model::Load(dir, "cpu"), "load");
      row("cpu", "fp32", *cpu);
      row("cpu", "policy bits 8 (ONEDNN int8)", *OrDie(cpu->Apply(Uniform(0, 8)), "apply"));
    }
    RemoveAll(dir);
  }
}

int Main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // every table row reaches a pipe, even if a later step crashes
  const std::vector<FlagSpec> flags = {
      {"device", "the GPU to compare with the CPU", "cuda:0"},
      {"skip-latency", "only the agreement checks", "", true},
      {"no-cpu-latency", "time the GPU only", "", true},
      {"help", "show this help", "", true},
  };
  auto args = Args::Parse(argc, argv, 1, flags);
  if (!args.ok() || args->GetBool("help")) {
    std::cerr << FormatUsage("bench_cuda_check [--device cuda:N]", flags);
    return args.ok() ? 0 : 2;
  }
  const std::string device = args->Get("device");
  if (auto status = ValidateDevice(device); !status.ok()) {
    std::cerr << "bench_cuda_check: " << status.message() << "\n";
    return 2;
  }
  const int threads = ConfigureTorch(0);
  std::printf("LibTorch %d.%d.%d, %s, %d CPU threads (LibTorch's default TF32 settings)\n", TORCH_VERSION_MAJOR,
              TORCH_VERSION_MINOR, TORCH_VERSION_PATCH, device.c_str(), threads);
  const std::string root = OrDie(MakeTempDir("shrink-cuda-check-"), "temp dir");
  AgreementTable(device, root);
  CalibrationCheck(device, root);
  if (!args->GetBool("skip-latency")) LatencyTable(device, root, !args->GetBool("no-cpu-latency"));
  RemoveAll(root);
  std::printf("\n%s (%d failed checks)\n", failures == 0 ? "ALL CHECKS PASSED" : "CHECKS FAILED", failures);
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace shrink::worker

int main(int argc, char** argv) { return shrink::worker::Main(argc, argv); }
