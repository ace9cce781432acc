// Group-wise 4–7-bit weight-only quantization (worker/group_quant.h) on BERT-base
// linear shapes with 128-token batches: stored bytes vs fp32, output relative error
// ||X Wᵀ - X Ŵᵀ|| / ||X Wᵀ|| of round-to-nearest (min-max) vs GPTQ on held-out inputs,
// quantization time, and forward latency of the 4-bit layer (dequantized fp32 and
// int8-requantized compute) vs fp32 and the plain int8 layer. Inputs are correlated
// (latent factors + noise) like real activations; weights are Kaiming-uniform.
// Median of 30 timed runs after 5 warm-up runs; never fails on a time.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <thread>
#include <vector>

#include "worker/compress/quantize/groupwise_quantize.h"
#include "worker/checkpoint/packed_weight.h"
#include "worker/nn/group_linear.h"
#include "worker/checkpoint/int8_weight.h"

namespace {

using namespace shrink::worker;
constexpr int kWarmupRuns = 5;
constexpr int kTimedRuns = 30;
constexpr int64_t kGroup = 128;
constexpr int64_t kTokens = 128;
constexpr int64_t kCalibTokens = 1024;

double MedianMs(const std::function<torch::Tensor()>& run) {
  for (int i = 0; i < kWarmupRuns; ++i) run();
  std::vector<double> times;
  for (int i = 0; i < kTimedRuns; ++i) {
    auto start = std::chrono::steady_clock::now();
    torch::Tensor y = run();
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return (times[kTimedRuns / 2 - 1] + times[kTimedRuns / 2]) / 2;
}

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

FloatMatrixView View(const torch::Tensor& t) { return {t.data_ptr<float>(), t.size(0), t.size(1)}; }

torch::Tensor Deq(const PackedGroupWeight& p) {
  std::vector<float> v = DequantizeGroupwise(p).value();
  return torch::from_blob(v.data(), {p.out, p.in}, torch::kFloat32).clone();
}

}  // namespace

int main() {
  torch::NoGradGuard no_grad;
  if (auto status = UseOnednnEngine(); !status.ok()) {
    std::fprintf(stderr, "bench_group_quant: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  const int threads = 2;
  at::set_num_threads(threads);
  std::printf("machine: %u hardware threads, intra-op threads %d, group %lld, %lld-token batches, "
              "GPTQ calibration %lld tokens (damping 1%%, block 128), warm-up %d, median of %d runs\n\n",
              std::thread::hardware_concurrency(), at::get_num_threads(), static_cast<long long>(kGroup),
              static_cast<long long>(kTokens), static_cast<long long>(kCalibTokens), kWarmupRuns, kTimedRuns);

  struct Shape { int64_t in, out; const char* note; };
  const std::vector<Shape> shapes = {{768, 768, "attention proj"}, {768, 3072, "FFN up"}, {3072, 768, "FFN down"}};
  std::vector<std::string> latency_rows;
  std::printf("| layer (in→out) | bits | bytes vs fp32 | RTN rel. error | GPTQ rel. error | RTN s | GPTQ s |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
  for (const Shape& s : shapes) {
    torch::manual_seed(0);
    torch::nn::Linear fp32(torch::nn::LinearOptions(s.in, s.out));
    torch::Tensor weight = fp32->weight.detach().contiguous();
    torch::Tensor bias = fp32->bias.detach().contiguous();
    torch::Tensor mix = torch::randn({64, s.in}) / 8.0;
    auto inputs = [&](int64_t n) { return (torch::randn({n, 64}).matmul(mix) + 0.3 * torch::randn({n, s.in})).contiguous(); };
    torch::Tensor calib = inputs(kCalibTokens), x = inputs(kTokens), test = inputs(1024);
    torch::Tensor y = test.matmul(weight.t());
    const double fp32_bytes = 4.0 * s.in * s.out;
    PackedGroupWeight four_bit;
    for (int bits = 4; bits <= 7; ++bits) {
      GroupQuantOptions options;
      options.bits = bits;
      options.group_size = kGroup;
      auto t0 = std::chrono::steady_clock::now();
      PackedGroupWeight rtn = QuantizeGroupwise(View(weight), options).value();
      const double rtn_s = Seconds(t0);
      t0 = std::chrono::steady_clock::now();
      PackedGroupWeight gptq = QuantizeGroupwise(View(weight), options, View(calib)).value();
      const double gptq_s = Seconds(t0);
      const double rtn_err = ((test.matmul(Deq(rtn).t()) - y).norm() / y.norm()).item<double>();
      const double gptq_err = ((test.matmul(Deq(gptq).t()) - y).norm() / y.norm()).item<double>();
      std::printf("| %lld→%lld (%s) | %d | %.1f%% | %.3f%% | %.3f%% | %.3f | %.2f |\n", static_cast<long long>(s.in),
                  static_cast<long long>(s.out), s.note, bits, 100.0 * PackedBytes(s.out, s.in, bits, kGroup) / fp32_bytes,
                  100 * rtn_err, 100 * gptq_err, rtn_s, gptq_s);
      std::fflush(stdout);
      if (bits == 4) four_bit = gptq;
    }
    auto g32 = GroupwiseLinear::Create(four_bit, bias, GroupwiseCompute::kFp32).value();
    auto g8 = GroupwiseLinear::Create(four_bit, bias, GroupwiseCompute::kInt8).value();
    auto int8 = Int8Linear::Create(OnednnLinearAcceptsPerChannel() ? QuantizePerChannel(weight) : QuantizePerTensor(weight), bias).value();
    auto t0 = std::chrono::steady_clock::now();
    auto load = GroupwiseLinear::Create(four_bit, bias, GroupwiseCompute::kInt8).value();
    const double load_ms = 1000 * Seconds(t0);
    torch::Tensor y32 = torch::linear(test, weight, bias);
    const double err32 = ((g32->Forward(test) - y32).norm() / y32.norm()).item<double>();
    const double err8 = ((g8->Forward(test) - y32).norm() / y32.norm()).item<double>();
    const double fp32_ms = MedianMs([&] { return torch::linear(x, weight, bias); });
    const double int8_ms = MedianMs([&] { return int8->Forward(x); });
    const double g32_ms = MedianMs([&] { return g32->Forward(x); });
    const double g8_ms = MedianMs([&] { return g8->Forward(x); });
    char row[512];
    std::snprintf(row, sizeof row, "| %lld×%lld→%lld | %d | %.3f | %.3f | %.3f (%.3f%%) | %.3f (%.3f%%) | %.1f |",
                  static_cast<long long>(kTokens), static_cast<long long>(s.in), static_cast<long long>(s.out), threads,
                  fp32_ms, int8_ms, g32_ms, 100 * err32, g8_ms, 100 * err8, load_ms);
    latency_rows.push_back(row);
  }
  std::printf("\n| forward (tokens×in→out) | threads | fp32 ms | int8 ms | 4-bit GPTQ, fp32 compute ms (rel. error) | "
              "4-bit GPTQ, int8 compute ms (rel. error) | 4-bit load (unpack+int8 prepack) ms |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
  for (const std::string& row : latency_rows) std::printf("%s\n", row.c_str());
  return 0;
}
