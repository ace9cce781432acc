#include "worker/export/onnx_weights.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/checkpoint/packed_weight.h"
#include "worker/checkpoint/storage_scheme.h"

namespace shrink::worker {
namespace {

// MatMulNBits' block must be a power of two of at least 16 (ONNX Runtime's contrib op spec).
bool IsNBitsBlock(int64_t group_size) { return group_size >= 16 && (group_size & (group_size - 1)) == 0; }

absl::Status Unsupported(const StoredWeight& w, const std::string& why) {
  return absl::InvalidArgumentError(
      absl::StrCat("layer ", w.layer, ": scheme ", w.scheme, " (", w.bits, " bits) cannot be exported: ", why));
}

bool IsInt8Scheme(const StoredWeight& w) { return w.bits == 8 && w.scheme != kSchemeGroupwise; }

// The stored group-wise weight as plain codes, one byte each, row-major [out, in].
absl::StatusOr<std::vector<uint8_t>> Codes(const StoredWeight& w) {
  torch::Tensor packed = w.packed.contiguous();
  std::vector<uint8_t> bytes(packed.data_ptr<uint8_t>(), packed.data_ptr<uint8_t>() + packed.numel());
  auto codes = UnpackCodes(bytes, w.out * w.in, w.bits);
  if (!codes.ok()) return Unsupported(w, std::string(codes.status().message()));
  return codes;
}

// fp16 scales / zeros [out, groups] widened to fp32 (exact).
torch::Tensor Widened(const torch::Tensor& t) { return t.to(torch::kFloat32).contiguous(); }

}  // namespace

int OnnxType(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32: return onnx::TensorProto::FLOAT;
    case torch::kFloat16: return onnx::TensorProto::FLOAT16;
    case torch::kInt8: return onnx::TensorProto::INT8;
    case torch::kUInt8: return onnx::TensorProto::UINT8;
    case torch::kInt32: return onnx::TensorProto::INT32;
    case torch::kInt64: return onnx::TensorProto::INT64;
    default: return -1;
  }
}

std::string AddTensor(OnnxGraph& graph, const std::string& name, const torch::Tensor& t) {
  torch::Tensor c = t.contiguous().cpu();
  const int type = OnnxType(c.scalar_type());
  TORCH_CHECK(type >= 0, "tensor ", name, " has a dtype ONNX export does not handle: ", c.scalar_type());
  return graph.AddInitializer(name, type, c.sizes().vec(), c.data_ptr(), c.numel() * c.element_size());
}

namespace {

// The initializer under `key`, added by `make` the first time.
template <typename Make>
std::string Shared(SharedInitializers* shared, const std::string& key, Make make) {
  if (shared == nullptr) return make();
  auto it = shared->find(key);
  if (it != shared->end()) return it->second;
  return (*shared)[key] = make();
}

// An int8 weight's values [out, in] and scales ([out], or a scalar per tensor).
struct Int8Names {
  std::string values, scale;
};
Int8Names AddInt8(OnnxGraph& graph, const StoredWeight& w, SharedInitializers* shared) {
  Int8Names n;
  n.values = Shared(shared, w.layer + ".weight_int8", [&] { return AddTensor(graph, w.layer + ".weight_int8", w.weight); });
  n.scale = Shared(shared, w.layer + ".weight_scale", [&] {
    torch::Tensor scale = w.scale.to(torch::kFloat32).contiguous();
    return AddTensor(graph, w.layer + ".weight_scale", scale.numel() == 1 ? scale.reshape({}) : scale);
  });
  return n;
}

// A group-wise weight in MatMulNBits' layout: B uint8 [out, blocks, blob] (codes LSB-first along
// the inputs within each block; 4-bit codes two to a byte, 5..7-bit codes one to a byte, as
// 8-bit blocks) and fp32 scales [out, blocks].
struct NBitsNames {
  std::string b, scales;
  int bits = 0;
  int64_t blocks = 0, blob = 0;
};
// MatMulNBits' accuracy_level for int8 activations: ONNX Runtime 1.30's CPU kernel runs 8-bit
// blocks only this way (its fp32-activation path takes 2 and 4 bits).
constexpr int64_t kInt8Activations = 4;

absl::StatusOr<NBitsNames> AddNBits(OnnxGraph& graph, const StoredWeight& w, SharedInitializers* shared) {
  NBitsNames n;
  n.bits = w.bits == 4 ? 4 : 8;
  n.blocks = NumGroups(w.in, w.group_size);
  n.blob = w.group_size * n.bits / 8;
  const std::string key = w.layer + ".weight_packed";
  if (shared == nullptr || shared->count(key) == 0) {
    SHRINK_ASSIGN_OR_RETURN(std::vector<uint8_t> codes, Codes(w));
    std::vector<uint8_t> b(static_cast<size_t>(w.out * n.blocks * n.blob), 0);
    for (int64_t r = 0; r < w.out; ++r) {
      for (int64_t k = 0; k < w.in; ++k) {
        const uint8_t code = codes[static_cast<size_t>(r * w.in + k)];
        const int64_t block = k / w.group_size, offset = k % w.group_size;
        uint8_t& byte = b[static_cast<size_t>((r * n.blocks + block) * n.blob + offset * n.bits / 8)];
        byte |= n.bits == 4 ? static_cast<uint8_t>(code << (4 * (offset % 2))) : code;
      }
    }
    const std::string name = graph.AddInitializer(key, onnx::TensorProto::UINT8, {w.out, n.blocks, n.blob}, b.data(), b.size());
    if (shared != nullptr) (*shared)[key] = name;
    n.b = name;
  } else {
    n.b = shared->at(key);
  }
  n.scales = Shared(shared, w.layer + ".weight_scales", [&] { return AddTensor(graph, w.layer + ".weight_scales", Widened(w.scales)); });
  return n;
}

// MatMulNBits' uint8 zero points from integer values [out, blocks]: 8 bits one per byte, 4 bits
// two per byte along the blocks (the even block in the low nibble), [out, ceil(blocks * bits / 8)].
torch::Tensor PackZeroPoints(const torch::Tensor& rounded, int bits) {
  torch::Tensor z = rounded.to(torch::kUInt8);
  if (bits == 8) return z.contiguous();
  const int64_t out = z.size(0), blocks = z.size(1);
  if (blocks % 2) z = torch::cat({z, torch::zeros({out, 1}, torch::kUInt8)}, 1);
  torch::Tensor pairs = z.reshape({out, -1, 2});
  return (pairs.select(2, 0) + pairs.select(2, 1) * 16).contiguous();  // nibbles: no carry
}

// E [in, blocks], E[k][b] = 1 when input k is in block b, else 0: built by nodes from scalars,
// which ONNX Runtime folds into a constant at load (the file stores none of it).
std::string BlockIndicator(OnnxGraph& graph, int64_t in, int64_t block, SharedInitializers* shared) {
  const std::string key = absl::StrCat("block_indicator_", in, "_", block);
  return Shared(shared, key, [&] {
    const std::string zero = graph.Int64s(key + ".zero", {0}, /*scalar=*/true);
    const std::string one = graph.Int64s(key + ".one", {1}, true);
    const std::string blocks = graph.Int64s(key + ".blocks", {NumGroups(in, block)}, true);
    const std::string inputs = graph.Node("Range", {zero, graph.Int64s(key + ".in", {in}, true), one}, key + ".inputs");
    const std::string of_input = graph.Node("Div", {inputs, graph.Int64s(key + ".block", {block}, true)}, key + ".of_input");
    const std::string column = graph.Node("Unsqueeze", {of_input, graph.Int64s(key + ".axis", {1})}, key + ".column");
    const std::string ids = graph.Node("Range", {zero, blocks, one}, key + ".ids");
    const std::string equal = graph.Node("Equal", {column, ids}, key + ".equal");
    return graph.Node("Cast", {equal}, key, {{"to", int64_t{onnx::TensorProto::FLOAT}}});
  });
}

// The codes of MatMulNBits-packed bytes `packed` [..., blob] one per element (int32), reshaped
// to `shape`: a 4-bit byte holds two codes, the low nibble first.
std::string UnpackCodes(OnnxGraph& graph, const std::string& packed, int bits, const std::vector<int64_t>& shape,
                        const std::string& name) {
  std::string codes = graph.Node("Cast", {packed}, name + ".bytes", {{"to", int64_t{onnx::TensorProto::INT32}}});
  if (bits == 4) {
    const std::string sixteen = graph.AddInitializer(name + ".sixteen", onnx::TensorProto::INT32, {}, "\x10\0\0\0", 4);
    const std::string pair_axis = graph.Int64s(name + ".pair_axis", {-1});
    const std::string low = graph.Node("Unsqueeze", {graph.Node("Mod", {codes, sixteen}, name + ".low_codes"), pair_axis}, name + ".low");
    const std::string high = graph.Node("Unsqueeze", {graph.Node("Div", {codes, sixteen}, name + ".high_codes"), pair_axis}, name + ".high");
    codes = graph.Node("Concat", {low, high}, name + ".code_pairs", {{"axis", int64_t{-1}}});
  }
  return graph.Node("Reshape", {codes, graph.Int64s(name + ".code_shape", shape)}, name + ".codes");
}

// Stored fp16 zero points [out, blocks] widened to fp32, once per layer.
std::string StoredZeros(OnnxGraph& graph, const StoredWeight& w, SharedInitializers* shared) {
  return Shared(shared, w.layer + ".weight_zeros", [&] { return AddTensor(graph, w.layer + ".weight_zeros", Widened(w.zeros)); });
}

}  // namespace

StoredWeight StoredWeightOf(const std::string& layer, const LayerStorage& storage,
                            const std::map<std::string, torch::Tensor>& tensors, int64_t in) {
  StoredWeight w;
  w.layer = layer;
  w.scheme = storage.scheme;
  w.bits = storage.bits;
  w.group_size = storage.group_size;
  w.in = in;
  if (auto packed = tensors.find(layer + ".weight_packed"); packed != tensors.end()) {
    w.packed = packed->second;
    w.scales = tensors.at(layer + ".weight_scales");
    w.zeros = tensors.at(layer + ".weight_zeros");
    w.out = w.scales.size(0);
  } else {
    w.weight = tensors.at(layer + ".weight");
    w.out = w.weight.size(0);
    if (auto scale = tensors.find(layer + ".weight_scale"); scale != tensors.end()) w.scale = scale->second;
  }
  if (auto bias = tensors.find(layer + ".bias"); bias != tensors.end()) w.bias = bias->second;
  return w;
}

absl::StatusOr<std::string> ExportLinear(OnnxGraph& graph, const std::string& x, const StoredWeight& w,
                                         const std::string& name, const LowBitLinearOptions& low_bit,
                                         SharedInitializers* shared) {
  std::string y;
  if (w.scheme == kSchemeFloat32 || w.scheme == kSchemeFloat16) {
    std::string weight = AddTensor(graph, name + ".weight_t", w.weight.t().contiguous());
    if (w.scheme == kSchemeFloat16) weight = graph.Node("Cast", {weight}, name + ".weight_f32", {{"to", int64_t{onnx::TensorProto::FLOAT}}});
    y = graph.Node("MatMul", {x, weight}, name + ".matmul");
  } else if (IsInt8Scheme(w)) {
    // B [K, N] int8 (the stored [N, K] transposed; ONNX Runtime folds that at load), scale per
    // column (output channel) or one scalar; zero point 0.
    const Int8Names int8 = AddInt8(graph, w, shared);
    const std::string b = graph.Node("Transpose", {int8.values}, name + ".weight_t", {{"perm", std::vector<int64_t>{1, 0}}});
    torch::Tensor zero = torch::zeros({w.scale.numel() == 1 ? int64_t{1} : w.out}, torch::kInt8);
    const std::string z = AddTensor(graph, name + ".weight_zero", w.scale.numel() == 1 ? zero.reshape({}) : zero);
    std::vector<std::string> inputs = {x, b, int8.scale, z};
    if (w.bias.defined()) inputs.push_back(AddTensor(graph, name + ".bias", w.bias.to(torch::kFloat32)));
    return graph.Node("DynamicQuantizeMatMul", inputs, name, {}, kMicrosoftDomain);
  } else if (w.scheme == kSchemeGroupwise) {
    if (low_bit.int8_kernel) {
      // Shrink's runtime: the dequantized weight requantized per output channel, symmetric
      // int8 (max |w| / 127, 1 for an all-zero row), then the int8 linear. Every node before
      // DynamicQuantizeMatMul has constant inputs, so ONNX Runtime computes them once at load.
      SHRINK_ASSIGN_OR_RETURN(std::string weight, ExportFloatWeight(graph, w, name + ".weight", shared));
      const std::string max_abs = graph.Node("ReduceMax", {graph.Node("Abs", {weight}, name + ".weight_abs")}, name + ".max_abs",
                                             {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{1}}});
      const std::string raw = graph.Node("Div", {max_abs, graph.Floats(name + ".int8_max", {127.0f}, true)}, name + ".raw_scale");
      const std::string all_zero = graph.Node("Equal", {raw, graph.Floats(name + ".zero_scale", {0.0f}, true)}, name + ".all_zero");
      const std::string scale =
          graph.Node("Where", {all_zero, graph.Floats(name + ".unit_scale", {1.0f}, true), raw}, name + ".int8_scale");
      const std::string rounded = graph.Node("Round", {graph.Node("Div", {weight, scale}, name + ".scaled")}, name + ".rounded");
      const std::string q = graph.Node("Cast", {rounded}, name + ".weight_int8", {{"to", int64_t{onnx::TensorProto::INT8}}});
      const std::string b = graph.Node("Transpose", {q}, name + ".weight_t", {{"perm", std::vector<int64_t>{1, 0}}});
      const std::string scales = graph.Node("Squeeze", {scale, graph.Int64s(name + ".scale_axis", {1})}, name + ".int8_scales");
      std::vector<std::string> inputs = {x, b, scales, AddTensor(graph, name + ".weight_zero", torch::zeros({w.out}, torch::kInt8))};
      if (w.bias.defined()) inputs.push_back(AddTensor(graph, name + ".bias", w.bias.to(torch::kFloat32)));
      return graph.Node("DynamicQuantizeMatMul", inputs, name, {}, kMicrosoftDomain);
    }
    if (!IsNBitsBlock(w.group_size)) {
      // Not a block MatMulNBits takes: the exact dequantized weight in fp32 instead.
      SHRINK_ASSIGN_OR_RETURN(std::string weight, ExportFloatWeight(graph, w, name + ".weight"));
      const std::string weight_t = graph.Node("Transpose", {weight}, name + ".weight_t", {{"perm", std::vector<int64_t>{1, 0}}});
      y = graph.Node("MatMul", {x, weight_t}, name + ".matmul");
    } else {
      // MatMulNBits' fast kernels take integer (uint8) zero points only, and Shrink's are
      // fractional (fp16). So the node gets each zero point rounded, r = round(z), and the rest
      // goes back per block, exactly:
      //   sum_k x_k (q - z) s = sum_k x_k (q - r) s + sum_blocks (sum_{k in block} x_k) (r - z) s
      // Rounding (rather than one fixed zero point) keeps the node's terms as small as the
      // weights, so its int8 activations err no more than on the weights themselves. The block
      // sums are x times a 0/1 [in, blocks] matrix: blocks / in of the main product's work.
      SHRINK_ASSIGN_OR_RETURN(NBitsNames n, AddNBits(graph, w, shared));
      const torch::Tensor zeros = Widened(w.zeros), scales = Widened(w.scales);
      const torch::Tensor rounded = zeros.round().clamp(0, (1 << n.bits) - 1);
      const std::string zero_points = Shared(shared, w.layer + ".weight_zero_points", [&] {
        return AddTensor(graph, w.layer + ".weight_zero_points", PackZeroPoints(rounded, n.bits));
      });
      y = graph.Node("MatMulNBits", {x, n.b, n.scales, zero_points}, name + ".matmul_nbits",
                     {{"K", w.in}, {"N", w.out}, {"bits", int64_t{n.bits}}, {"block_size", w.group_size},
                      {"accuracy_level", n.bits == 8 ? kInt8Activations : low_bit.nbits_accuracy_level}},
                     kMicrosoftDomain);
      const torch::Tensor correction = ((rounded - zeros) * scales).t().contiguous();
      if (correction.abs().max().item<float>() > 0) {  // integer zero points need none
        const std::string sums = graph.Node("MatMul", {x, BlockIndicator(graph, w.in, w.group_size, shared)}, name + ".block_sums");
        const std::string fix = graph.Node("MatMul", {sums, AddTensor(graph, name + ".zero_correction", correction)},
                                           name + ".zero_correction");
        y = graph.Node("Add", {y, fix}, name + ".matmul");
      }
    }
  } else {
    return Unsupported(w, "unknown scheme");
  }
  if (!w.bias.defined()) return y;
  return graph.Node("Add", {y, AddTensor(graph, name + ".bias", w.bias.to(torch::kFloat32))}, name);
}

absl::StatusOr<std::string> ExportFloatWeight(OnnxGraph& graph, const StoredWeight& w, const std::string& name,
                                              SharedInitializers* shared) {
  const int64_t kFloat = onnx::TensorProto::FLOAT;
  const std::vector<int64_t> matrix = {w.out, w.in};
  if (w.scheme == kSchemeFloat32) return AddTensor(graph, name, w.weight.reshape(matrix));
  if (w.scheme == kSchemeFloat16) {
    return graph.Node("Cast", {AddTensor(graph, name + "_f16", w.weight.reshape(matrix))}, name, {{"to", kFloat}});
  }
  if (IsInt8Scheme(w)) {
    const std::string values = AddTensor(graph, name + "_int8", w.weight.reshape(matrix));
    torch::Tensor scale = w.scale.to(torch::kFloat32).reshape({-1, 1}).contiguous();
    const std::string widened = graph.Node("Cast", {values}, name + "_cast", {{"to", kFloat}});
    return graph.Node("Mul", {widened, AddTensor(graph, name + "_scale", scale)}, name);
  }
  if (w.scheme == kSchemeGroupwise) {
    const int64_t blocks = NumGroups(w.in, w.group_size), padded = blocks * w.group_size;
    std::string codes, scales;
    if (IsNBitsBlock(w.group_size)) {
      // The packed bytes MatMulNBits would take (shared with a tied embedding), unpacked here.
      SHRINK_ASSIGN_OR_RETURN(NBitsNames n, AddNBits(graph, w, shared));
      codes = UnpackCodes(graph, n.b, n.bits, {w.out, blocks, w.group_size}, name);
      scales = n.scales;
    } else {
      // A group MatMulNBits cannot take: one code per byte.
      SHRINK_ASSIGN_OR_RETURN(std::vector<uint8_t> stored, Codes(w));
      std::vector<uint8_t> grid(static_cast<size_t>(w.out * padded), 0);
      for (int64_t r = 0; r < w.out; ++r) {
        std::copy_n(stored.begin() + r * w.in, w.in, grid.begin() + r * padded);
      }
      codes = graph.AddInitializer(name + "_codes", onnx::TensorProto::UINT8, {w.out, blocks, w.group_size}, grid.data(),
                                   grid.size());
      scales = AddTensor(graph, name + "_block_scales", Widened(w.scales));
    }
    // (code - zero) * scale per (row, block), then the padding of a short last block cut off.
    const std::string f = graph.Node("Cast", {codes}, name + "_cast", {{"to", kFloat}});
    const std::string axis = graph.Int64s(name + "_block_axis", {-1});
    const std::string zeros = graph.Node("Unsqueeze", {StoredZeros(graph, w, shared), axis}, name + "_zeros");
    const std::string scaled = graph.Node(
        "Mul", {graph.Node("Sub", {f, zeros}, name + "_centered"), graph.Node("Unsqueeze", {scales, axis}, name + "_scales")},
        name + "_scaled");
    const std::string flat = graph.Node("Reshape", {scaled, graph.Int64s(name + "_padded_shape", {w.out, padded})},
                                        name + "_padded");
    if (padded == w.in) return graph.Node("Identity", {flat}, name);
    return graph.Node("Slice", {flat, graph.Int64s(name + "_start", {0}), graph.Int64s(name + "_end", {w.in}),
                                graph.Int64s(name + "_axis", {1})},
                      name);
  }
  return Unsupported(w, "unknown scheme");
}

absl::StatusOr<std::string> ExportEmbeddingLookup(OnnxGraph& graph, const std::string& ids, const StoredWeight& w,
                                                  const std::string& name, SharedInitializers* shared) {
  const int64_t kFloat = onnx::TensorProto::FLOAT;
  if (IsInt8Scheme(w)) {
    // Only the looked-up rows are widened, each by its own scale.
    const Int8Names int8 = AddInt8(graph, w, shared);
    const std::string rows = graph.Node("Gather", {int8.values, ids}, name + ".rows_int8");
    const std::string widened = graph.Node("Cast", {rows}, name + ".rows_f32", {{"to", kFloat}});
    std::string row_scales = int8.scale;
    if (w.scale.numel() > 1) {
      row_scales = graph.Node("Unsqueeze", {graph.Node("Gather", {int8.scale, ids}, name + ".row_scale"),
                                            graph.Int64s(name + ".scale_axis", {-1})},
                              name + ".row_scales");
    }
    return graph.Node("Mul", {widened, row_scales}, name);
  }
  if (w.scheme == kSchemeGroupwise && IsNBitsBlock(w.group_size)) {
    // Gather the packed rows, unpack their codes: (code - zero) * scale per block.
    SHRINK_ASSIGN_OR_RETURN(NBitsNames n, AddNBits(graph, w, shared));
    // [batch, sequence, blocks, block] (0 keeps the ids' two dimensions).
    const std::string codes = UnpackCodes(graph, graph.Node("Gather", {n.b, ids}, name + ".rows_packed"), n.bits,
                                          {0, 0, n.blocks, w.group_size}, name);
    const std::string f = graph.Node("Cast", {codes}, name + ".codes_f32", {{"to", kFloat}});
    const std::string axis = graph.Int64s(name + ".block_axis", {-1});
    const std::string zeros = graph.Node("Unsqueeze", {graph.Node("Gather", {StoredZeros(graph, w, shared), ids}, name + ".row_zeros"), axis}, name + ".zeros");
    const std::string scales = graph.Node("Unsqueeze", {graph.Node("Gather", {n.scales, ids}, name + ".row_scales"), axis}, name + ".scales");
    const std::string values = graph.Node("Mul", {graph.Node("Sub", {f, zeros}, name + ".centered"), scales}, name + ".blocks");
    const std::string flat = graph.Node("Reshape", {values, graph.Int64s(name + ".flat_shape", {0, 0, n.blocks * w.group_size})},
                                        name + ".padded");
    if (n.blocks * w.group_size == w.in) return graph.Node("Identity", {flat}, name);
    return graph.Node("Slice", {flat, graph.Int64s(name + ".start", {0}), graph.Int64s(name + ".end", {w.in}),
                                graph.Int64s(name + ".axis", {-1})},
                      name);
  }
  SHRINK_ASSIGN_OR_RETURN(std::string table, ExportFloatWeight(graph, w, name + ".weight"));
  return graph.Node("Gather", {table, ids}, name);
}

}  // namespace shrink::worker
