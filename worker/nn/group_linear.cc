#include "worker/nn/group_linear.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace shrink::worker {

absl::StatusOr<std::shared_ptr<const GroupwiseLinear>> GroupwiseLinear::Create(const PackedGroupWeight& weight,
                                                                               const torch::Tensor& bias,
                                                                               GroupwiseCompute compute) {
  torch::NoGradGuard no_grad;
  SHRINK_ASSIGN_OR_RETURN(std::vector<float> values, DequantizeGroupwise(weight));
  auto layer = std::make_shared<GroupwiseLinear>();
  layer->compute_ = compute;
  layer->weight_ = torch::from_blob(values.data(), {weight.out, weight.in}, torch::kFloat32).clone();
  torch::Tensor b = bias.defined() ? bias.detach().to(torch::kFloat32).contiguous() : torch::zeros({weight.out});
  if (b.dim() != 1 || b.size(0) != weight.out) {
    return absl::InvalidArgumentError(
        absl::StrCat("GroupwiseLinear: bias has ", b.numel(), " values, the weight has ", weight.out, " outputs"));
  }
  layer->bias_ = b;
  if (compute == GroupwiseCompute::kInt8) {
    SHRINK_RETURN_IF_ERROR(UseOnednnEngine());
    QuantizedWeight q = OnednnLinearAcceptsPerChannel() ? QuantizePerChannel(layer->weight_)
                                                        : QuantizePerTensor(layer->weight_);
    SHRINK_ASSIGN_OR_RETURN(layer->int8_, Int8Linear::Create(q, b));
  }
  return std::shared_ptr<const GroupwiseLinear>(std::move(layer));
}

torch::Tensor GroupwiseLinear::Forward(const torch::Tensor& x) const {
  if (compute_ == GroupwiseCompute::kInt8) return int8_->Forward(x);
  return torch::linear(x, weight_, bias_);
}

PackedTensors ToTensors(const PackedGroupWeight& w) {
  const int64_t groups = NumGroups(w.in, w.group_size);
  PackedTensors t;
  t.packed = torch::from_blob(const_cast<uint8_t*>(w.codes.data()), {static_cast<int64_t>(w.codes.size())}, torch::kUInt8)
                 .clone();
  auto half = [&](const std::vector<uint16_t>& bits) {
    return torch::from_blob(const_cast<uint16_t*>(bits.data()), {w.out, groups}, torch::kInt16)
        .clone()
        .view(torch::kFloat16);
  };
  t.scales = half(w.scales);
  t.zeros = half(w.zeros);
  return t;
}

absl::StatusOr<PackedGroupWeight> FromTensors(const PackedTensors& t, int64_t out, int64_t in, int bits,
                                              int64_t group_size, const std::string& what) {
  PackedGroupWeight w;
  w.out = out;
  w.in = in;
  w.bits = bits;
  w.group_size = group_size;
  if (!t.packed.defined() || t.packed.scalar_type() != torch::kUInt8 || t.packed.dim() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(what, ".weight_packed must be a 1-d U8 tensor"));
  }
  const int64_t groups = group_size > 0 ? NumGroups(in, group_size) : 0;
  for (const auto& [tensor, name] : {std::pair<const torch::Tensor&, const char*>{t.scales, "weight_scales"},
                                     {t.zeros, "weight_zeros"}}) {
    if (!tensor.defined() || tensor.scalar_type() != torch::kFloat16 || tensor.dim() != 2 || tensor.size(0) != out ||
        tensor.size(1) != groups) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ".", name, " must be F16 [", out, ", ", groups, "] (", in, " inputs in groups of ", group_size, ")"));
    }
  }
  torch::Tensor packed = t.packed.contiguous();
  w.codes.assign(packed.data_ptr<uint8_t>(), packed.data_ptr<uint8_t>() + packed.numel());
  auto bits16 = [](const torch::Tensor& half) {
    torch::Tensor raw = half.contiguous().view(torch::kInt16);
    const uint16_t* p = reinterpret_cast<const uint16_t*>(raw.data_ptr<int16_t>());
    return std::vector<uint16_t>(p, p + raw.numel());
  };
  w.scales = bits16(t.scales);
  w.zeros = bits16(t.zeros);
  if (auto s = ValidatePackedGroupWeight(w); !s.ok()) return absl::InvalidArgumentError(absl::StrCat(what, ": ", s.message()));
  return w;
}

absl::StatusOr<PackedGroupWeight> QuantizeTensorGroupwise(const torch::Tensor& weight, int bits, int64_t group_size,
                                                          const torch::Tensor& calibration) {
  torch::NoGradGuard no_grad;
  torch::Tensor w = weight.detach().to(torch::kFloat32).reshape({weight.size(0), -1}).contiguous();
  GroupQuantOptions options;
  options.bits = bits;
  options.group_size = group_size;
  FloatMatrixView calib;
  torch::Tensor x;
  if (calibration.defined() && calibration.numel() > 0) {
    x = calibration.detach().to(torch::kFloat32).contiguous();
    calib = {x.data_ptr<float>(), x.size(0), x.size(1)};
  }
  return QuantizeGroupwise({w.data_ptr<float>(), w.size(0), w.size(1)}, options, calib);
}

absl::StatusOr<torch::Tensor> DequantizedTensor(const PackedGroupWeight& weight) {
  SHRINK_ASSIGN_OR_RETURN(std::vector<float> values, DequantizeGroupwise(weight));
  return torch::from_blob(values.data(), {weight.out, weight.in}, torch::kFloat32).clone();
}

absl::StatusOr<PackedGroupWeight> ConcatRows(const std::vector<PackedGroupWeight>& parts) {
  if (parts.empty()) return absl::InvalidArgumentError("ConcatRows: no parts");
  PackedGroupWeight out;
  out.in = parts[0].in;
  out.bits = parts[0].bits;
  out.group_size = parts[0].group_size;
  std::vector<uint8_t> codes;
  for (const auto& part : parts) {
    if (part.in != out.in || part.bits != out.bits || part.group_size != out.group_size) {
      return absl::InvalidArgumentError("ConcatRows: parts differ in inputs, bits or group size");
    }
    SHRINK_ASSIGN_OR_RETURN(std::vector<uint8_t> unpacked, UnpackCodes(part.codes, part.out * part.in, part.bits));
    codes.insert(codes.end(), unpacked.begin(), unpacked.end());
    out.scales.insert(out.scales.end(), part.scales.begin(), part.scales.end());
    out.zeros.insert(out.zeros.end(), part.zeros.begin(), part.zeros.end());
    out.out += part.out;
  }
  SHRINK_ASSIGN_OR_RETURN(out.codes, PackCodes(codes, out.bits));
  return out;
}

absl::StatusOr<std::vector<PackedGroupWeight>> SplitRows(const PackedGroupWeight& w, int parts) {
  if (parts < 1 || w.out % parts != 0) {
    return absl::InvalidArgumentError(absl::StrCat("packed weight of ", w.out, " rows does not split into ", parts, " parts"));
  }
  SHRINK_RETURN_IF_ERROR(ValidatePackedGroupWeight(w));
  SHRINK_ASSIGN_OR_RETURN(std::vector<uint8_t> codes, UnpackCodes(w.codes, w.out * w.in, w.bits));
  const int64_t rows = w.out / parts, groups = NumGroups(w.in, w.group_size);
  std::vector<PackedGroupWeight> out;
  for (int p = 0; p < parts; ++p) {
    PackedGroupWeight part;
    part.out = rows;
    part.in = w.in;
    part.bits = w.bits;
    part.group_size = w.group_size;
    std::vector<uint8_t> slice(codes.begin() + p * rows * w.in, codes.begin() + (p + 1) * rows * w.in);
    SHRINK_ASSIGN_OR_RETURN(part.codes, PackCodes(slice, w.bits));
    part.scales.assign(w.scales.begin() + p * rows * groups, w.scales.begin() + (p + 1) * rows * groups);
    part.zeros.assign(w.zeros.begin() + p * rows * groups, w.zeros.begin() + (p + 1) * rows * groups);
    out.push_back(std::move(part));
  }
  return out;
}

torch::Tensor SubsampleRows(const torch::Tensor& inputs, int64_t max_rows) {
  torch::Tensor x = inputs.detach().to(torch::kFloat32);
  if (x.size(0) <= max_rows) return x.contiguous();
  torch::Tensor index = torch::linspace(0, static_cast<double>(x.size(0) - 1), max_rows).round().to(torch::kInt64);
  return x.index_select(0, index).contiguous();
}

}  // namespace shrink::worker
