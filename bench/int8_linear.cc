// A Linear layer in fp32 (torch::linear) against the worker's int8 path
// (Int8Linear: ONEDNN dynamic quantization, per-channel weights where ONEDNN
// accepts them, as the worker chooses), at 1 and 2 intra-op threads.
// Prints a Markdown table: median of 50 timed runs after 10 warm-up runs,
// and the relative error ||y8 - y32|| / ||y32|| of the int8 output.
// Reports figures only; it never fails on a time.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <thread>
#include <vector>

#include "worker/nn/int8_linear.h"
#include "worker/model/model.h"
#include "worker/nn/device.h"

namespace {

constexpr int kWarmupRuns = 10;
constexpr int kTimedRuns = 50;

struct Shape {
  int64_t batch, in, out;
  const char* note;
};

double MedianMs(const std::function<torch::Tensor()>& run) {
  for (int i = 0; i < kWarmupRuns; ++i) run();
  std::vector<double> times;
  times.reserve(kTimedRuns);
  for (int i = 0; i < kTimedRuns; ++i) {
    auto start = std::chrono::steady_clock::now();
    torch::Tensor y = run();
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return kTimedRuns % 2 ? times[kTimedRuns / 2] : (times[kTimedRuns / 2 - 1] + times[kTimedRuns / 2]) / 2;
}

}  // namespace

int main() {
  using namespace shrink::worker;
  torch::NoGradGuard no_grad;
  if (auto status = UseOnednnEngine(); !status.ok()) {
    std::fprintf(stderr, "bench_int8_linear: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  const bool per_channel = OnednnLinearAcceptsPerChannel();
  std::printf("machine: %u hardware threads, at::get_num_threads() at start = %d, qengine ONEDNN = %s, "
              "int8 weights %s, warm-up %d, median of %d runs\n\n",
              std::thread::hardware_concurrency(), at::get_num_threads(),
              at::globalContext().qEngine() == at::QEngine::ONEDNN ? "yes" : "no",
              per_channel ? "per-channel" : "per-tensor", kWarmupRuns, kTimedRuns);

  const std::vector<Shape> shapes = {
      {32, 3136, 128, " (CNN fc1)"},
      {256, 3136, 128, " (CNN fc1)"},
      {128, 768, 3072, " (DESIGN)"},
  };
  std::printf("| shape (batch×in×out) | threads | fp32 ms | int8 ms | speedup | rel. error |\n");
  std::printf("|---|---:|---:|---:|---:|---:|\n");
  for (const Shape& s : shapes) {
    torch::manual_seed(0);
    torch::nn::Linear fp32(torch::nn::LinearOptions(s.in, s.out));  // default (Kaiming-uniform) init
    fp32->eval();
    torch::Tensor weight = fp32->weight.detach().contiguous();
    torch::Tensor bias = fp32->bias.detach().contiguous();
    torch::Tensor x = torch::randn({s.batch, s.in});
    auto int8 = Int8Linear::Create(per_channel ? QuantizePerChannel(weight) : QuantizePerTensor(weight), bias);
    if (!int8.ok()) {
      std::fprintf(stderr, "bench_int8_linear: %s\n", std::string(int8.status().message()).c_str());
      return 1;
    }
    const Int8Linear& layer = **int8;

    torch::Tensor y32 = torch::linear(x, weight, bias);
    torch::Tensor y8 = layer.Forward(x);
    const double rel_error = ((y8 - y32).norm() / y32.norm()).item<double>();

    for (int threads : {1, 2}) {
      const int used = ConfigureTorch(threads);
      const double fp32_ms = MedianMs([&] { return torch::linear(x, weight, bias); });
      const double int8_ms = MedianMs([&] { return layer.Forward(x); });
      std::printf("| %lld×%lld×%lld%s | %d | %.3f | %.3f | %.2f× | %.2f%% |\n", static_cast<long long>(s.batch),
                  static_cast<long long>(s.in), static_cast<long long>(s.out), s.note, used, fp32_ms, int8_ms,
                  fp32_ms / int8_ms, 100 * rel_error);
      std::fflush(stdout);
    }
  }
  return 0;
}
