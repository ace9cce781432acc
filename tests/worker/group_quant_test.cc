// Group-wise 4–7-bit quantization: bit packing, min-max error bound, GPTQ vs
// round-to-nearest on correlated inputs, byte accounting, the linear layer.
#include "worker/compress/quantize/groupwise_quantize.h"
#include "worker/checkpoint/packed_weight.h"
#include "worker/nn/group_linear.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <random>
#include <vector>


namespace shrink::worker {
namespace {

FloatMatrixView View(const torch::Tensor& t) { return {t.data_ptr<float>(), t.size(0), t.size(1)}; }

torch::Tensor Dequantized(const PackedGroupWeight& packed) {
  auto values = DequantizeGroupwise(packed);
  EXPECT_TRUE(values.ok()) << values.status();
  return torch::from_blob(values->data(), {packed.out, packed.in}, torch::kFloat32).clone();
}

TEST(GroupQuantTest, PackUnpackRoundTripsEveryWidthAndOddCounts) {
  std::mt19937 rng(7);
  for (int bits = 4; bits <= 7; ++bits) {
    for (int64_t count : {1, 3, 7, 9, 13, 1000, 1001}) {
      std::vector<uint8_t> codes(count);
      std::uniform_int_distribution<int> dist(0, (1 << bits) - 1);
      for (auto& c : codes) c = static_cast<uint8_t>(dist(rng));
      auto packed = PackCodes(codes, bits);
      ASSERT_TRUE(packed.ok()) << packed.status();
      EXPECT_EQ(static_cast<int64_t>(packed->size()), (count * bits + 7) / 8) << bits << " bits, " << count;
      auto unpacked = UnpackCodes(*packed, count, bits);
      ASSERT_TRUE(unpacked.ok()) << unpacked.status();
      EXPECT_EQ(*unpacked, codes) << bits << " bits, " << count << " codes";
    }
  }
}

TEST(GroupQuantTest, PackingIsTightLsbFirstAcrossBytes) {
  // 5-bit codes 1 and 31: byte 0 = 00001 | 111<<5, byte 1 = 11 (the rest of 31).
  auto packed = PackCodes({1, 31}, 5);
  ASSERT_TRUE(packed.ok());
  EXPECT_EQ(*packed, (std::vector<uint8_t>{0xE1, 0x03}));
  auto too_big = PackCodes({3, 16}, 4);
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.status().message().find("index 1"), std::string::npos) << too_big.status();
  EXPECT_FALSE(UnpackCodes(*packed, 4, 5).ok());  // 4 codes of 5 bits need 3 bytes
}

TEST(GroupQuantTest, MinMaxErrorIsAtMostHalfAStepPerElement) {
  torch::manual_seed(1);
  // 200 inputs with groups of 64: the last group has 8 columns.
  torch::Tensor w = torch::randn({5, 200}) * 0.05 + torch::randn({5, 1}) * 0.02;
  double last_error = 1e9;
  for (int bits = 4; bits <= 7; ++bits) {
    GroupQuantOptions options;
    options.bits = bits;
    options.group_size = 64;
    auto packed = QuantizeGroupwise(View(w), options);
    ASSERT_TRUE(packed.ok()) << packed.status();
    ASSERT_EQ(packed->scales.size(), 5u * 4);
    torch::Tensor deq = Dequantized(*packed);
    auto acc = w.accessor<float, 2>();
    auto dq = deq.accessor<float, 2>();
    for (int64_t r = 0; r < 5; ++r) {
      for (int64_t c = 0; c < 200; ++c) {
        const float s = HalfBitsToFloat(packed->scales[r * 4 + c / 64]);
        const float z = HalfBitsToFloat(packed->zeros[r * 4 + c / 64]);
        // Half a step, plus the fp16 rounding of the zero point (relative 2^-11).
        const float bound = s * (0.5f + std::ldexp(std::max(1.0f, std::abs(z)), -10)) + 1e-7f;
        ASSERT_LE(std::abs(acc[r][c] - dq[r][c]), bound) << bits << " bits at (" << r << ", " << c << ")";
      }
    }
    // More bits, smaller error.
    const double error = (w - deq).abs().max().item<double>();
    EXPECT_LT(error, last_error) << bits;
    last_error = error;
  }
}

TEST(GroupQuantTest, PackedBytesMatchesStoredTensors) {
  EXPECT_EQ(PackedBytes(768, 768, 4, 128), 768 * 768 / 2 + 4 * 768 * 6);
  torch::manual_seed(2);
  for (int bits = 4; bits <= 7; ++bits) {
    for (auto [out, in, group] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{3, 13, 4}, {7, 64, 64}, {9, 130, 128}}) {
      torch::Tensor w = torch::randn({out, in});
      GroupQuantOptions options;
      options.bits = bits;
      options.group_size = group;
      auto packed = QuantizeGroupwise(View(w), options);
      ASSERT_TRUE(packed.ok()) << packed.status();
      const int64_t stored = packed->codes.size() + 2 * packed->scales.size() + 2 * packed->zeros.size();
      EXPECT_EQ(stored, PackedBytes(out, in, bits, group)) << out << "x" << in << " g" << group << " " << bits;
      EXPECT_TRUE(ValidatePackedGroupWeight(*packed).ok());
    }
  }
}

// Correlated inputs: a few latent factors mixed into every input column, plus noise.
torch::Tensor CorrelatedInputs(int64_t n, int64_t in, const torch::Tensor& mix) {
  return torch::randn({n, mix.size(0)}).matmul(mix) + 0.1 * torch::randn({n, in});
}

TEST(GroupQuantTest, GptqHasLowerOutputErrorThanRoundToNearest) {
  torch::manual_seed(3);
  const int64_t in = 192, out = 48;
  torch::Tensor mix = torch::randn({16, in});
  torch::Tensor calib = CorrelatedInputs(512, in, mix);
  torch::Tensor test = CorrelatedInputs(512, in, mix);
  torch::Tensor w = torch::randn({out, in}) * 0.1;
  torch::Tensor y = test.matmul(w.t());
  for (int bits : {4, 5}) {
    GroupQuantOptions options;
    options.bits = bits;
    options.group_size = 64;
    options.block_size = 32;  // several lazy-batch blocks, some groups spanning blocks
    auto rtn = QuantizeGroupwise(View(w), options);
    auto gptq = QuantizeGroupwise(View(w), options, View(calib));
    ASSERT_TRUE(rtn.ok()) << rtn.status();
    ASSERT_TRUE(gptq.ok()) << gptq.status();
    const double rtn_error = ((test.matmul(Dequantized(*rtn).t()) - y).norm() / y.norm()).item<double>();
    const double gptq_error = ((test.matmul(Dequantized(*gptq).t()) - y).norm() / y.norm()).item<double>();
    EXPECT_LT(gptq_error, 0.7 * rtn_error) << bits << " bits: RTN " << rtn_error << ", GPTQ " << gptq_error;
    EXPECT_EQ(gptq->codes.size(), rtn->codes.size());
  }
}

TEST(GroupQuantTest, RejectsBadInputsNamingTheField) {
  torch::Tensor w = torch::randn({4, 8});
  GroupQuantOptions options;
  options.bits = 3;
  auto bad_bits = QuantizeGroupwise(View(w), options);
  ASSERT_FALSE(bad_bits.ok());
  EXPECT_NE(bad_bits.status().message().find("bits"), std::string::npos);
  options.bits = 4;
  torch::Tensor x = torch::randn({10, 7});
  auto bad_calib = QuantizeGroupwise(View(w), options, View(x));
  ASSERT_FALSE(bad_calib.ok());
  EXPECT_NE(bad_calib.status().message().find("calibration"), std::string::npos);
  w[2][5] = std::nanf("");
  auto nan = QuantizeGroupwise(View(w), options);
  ASSERT_FALSE(nan.ok());
  EXPECT_NE(nan.status().message().find("(2, 5)"), std::string::npos) << nan.status();

  auto packed = QuantizeGroupwise(View(torch::randn({4, 8})), options);
  ASSERT_TRUE(packed.ok());
  packed->codes.pop_back();
  auto invalid = DequantizeGroupwise(*packed);
  ASSERT_FALSE(invalid.ok());
  EXPECT_NE(invalid.status().message().find("codes"), std::string::npos);
}

TEST(GroupQuantTest, GroupwiseLinearComputesWithTheDequantizedWeight) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(4);
  torch::Tensor w = torch::randn({24, 100}) * 0.1, b = torch::randn({24}), x = torch::randn({6, 100});
  GroupQuantOptions options;
  options.group_size = 32;
  auto packed = QuantizeGroupwise(View(w), options);
  ASSERT_TRUE(packed.ok());
  torch::Tensor expected = torch::linear(x, Dequantized(*packed), b);
  auto fp32 = GroupwiseLinear::Create(*packed, b, GroupwiseCompute::kFp32);
  ASSERT_TRUE(fp32.ok()) << fp32.status();
  EXPECT_TRUE(torch::allclose((*fp32)->Forward(x), expected, 1e-5, 1e-5));
  auto int8 = GroupwiseLinear::Create(*packed, b, GroupwiseCompute::kInt8);
  ASSERT_TRUE(int8.ok()) << int8.status();
  const double rel = (((*int8)->Forward(x) - expected).norm() / expected.norm()).item<double>();
  EXPECT_LT(rel, 0.03);
  EXPECT_FALSE(GroupwiseLinear::Create(*packed, torch::zeros({5}), GroupwiseCompute::kFp32).ok());
}

}  // namespace
}  // namespace shrink::worker
