#include "worker/checkpoint/packed_weight.h"

#include <c10/util/Half.h>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace shrink::worker {

int64_t NumGroups(int64_t in, int64_t group_size) { return (in + group_size - 1) / group_size; }

int64_t PackedCodeBytes(int64_t count, int bits) { return (count * bits + 7) / 8; }

int64_t PackedBytes(int64_t out, int64_t in, int bits, int64_t group_size) {
  return PackedCodeBytes(out * in, bits) + 2 * 2 * out * NumGroups(in, group_size);
}

uint16_t FloatToHalfBits(float value) { return c10::Half(value).x; }

float HalfBitsToFloat(uint16_t bits) { return static_cast<float>(c10::Half(bits, c10::Half::from_bits())); }

absl::StatusOr<std::vector<uint8_t>> PackCodes(const std::vector<uint8_t>& codes, int bits) {
  if (bits < 1 || bits > 8) return absl::InvalidArgumentError(absl::StrCat("PackCodes: bits must be 1..8, got ", bits));
  const int64_t count = static_cast<int64_t>(codes.size());
  std::vector<uint8_t> packed(PackedCodeBytes(count, bits), 0);
  for (int64_t k = 0; k < count; ++k) {
    const uint32_t v = codes[k];
    if (v >> bits) {
      return absl::InvalidArgumentError(absl::StrCat("PackCodes: code ", v, " at index ", k, " needs more than ", bits,
                                                     " bits"));
    }
    const int64_t bit = k * bits, byte = bit >> 3;
    const int offset = static_cast<int>(bit & 7);
    packed[byte] |= static_cast<uint8_t>(v << offset);
    if (offset + bits > 8) packed[byte + 1] |= static_cast<uint8_t>(v >> (8 - offset));
  }
  return packed;
}

absl::StatusOr<std::vector<uint8_t>> UnpackCodes(const std::vector<uint8_t>& packed, int64_t count, int bits) {
  if (bits < 1 || bits > 8) {
    return absl::InvalidArgumentError(absl::StrCat("UnpackCodes: bits must be 1..8, got ", bits));
  }
  if (count < 0 || static_cast<int64_t>(packed.size()) != PackedCodeBytes(count, bits)) {
    return absl::InvalidArgumentError(absl::StrCat("UnpackCodes: ", count, " codes of ", bits, " bits need ",
                                                   PackedCodeBytes(count, bits), " bytes, got ", packed.size()));
  }
  std::vector<uint8_t> codes(count);
  const uint32_t mask = (1u << bits) - 1;
  const int64_t n = static_cast<int64_t>(packed.size());
  for (int64_t k = 0; k < count; ++k) {
    const int64_t bit = k * bits, byte = bit >> 3;
    uint32_t window = packed[byte];
    if (byte + 1 < n) window |= static_cast<uint32_t>(packed[byte + 1]) << 8;
    codes[k] = static_cast<uint8_t>((window >> (bit & 7)) & mask);
  }
  return codes;
}

absl::Status ValidatePackedGroupWeight(const PackedGroupWeight& w) {
  if (w.bits < 4 || w.bits > 7) return absl::InvalidArgumentError(absl::StrCat("packed weight: bits = ", w.bits, ", must be 4..7"));
  if (w.out <= 0 || w.in <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("packed weight: shape ", w.out, "x", w.in, " must be positive"));
  }
  if (w.group_size <= 0) return absl::InvalidArgumentError(absl::StrCat("packed weight: group_size = ", w.group_size));
  const int64_t code_bytes = PackedCodeBytes(w.out * w.in, w.bits);
  if (static_cast<int64_t>(w.codes.size()) != code_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("packed weight: codes has ", w.codes.size(), " bytes, expected ", code_bytes));
  }
  const int64_t params = w.out * NumGroups(w.in, w.group_size);
  if (static_cast<int64_t>(w.scales.size()) != params) {
    return absl::InvalidArgumentError(
        absl::StrCat("packed weight: scales has ", w.scales.size(), " entries, expected ", params));
  }
  if (static_cast<int64_t>(w.zeros.size()) != params) {
    return absl::InvalidArgumentError(
        absl::StrCat("packed weight: zeros has ", w.zeros.size(), " entries, expected ", params));
  }
  for (int64_t i = 0; i < params; ++i) {
    const float s = HalfBitsToFloat(w.scales[i]), z = HalfBitsToFloat(w.zeros[i]);
    if (!(s > 0) || !std::isfinite(s)) {
      return absl::InvalidArgumentError(absl::StrCat("packed weight: scales[", i, "] = ", s, " must be finite and > 0"));
    }
    if (!std::isfinite(z)) return absl::InvalidArgumentError(absl::StrCat("packed weight: zeros[", i, "] is not finite"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> DequantizeGroupwise(const PackedGroupWeight& w) {
  SHRINK_RETURN_IF_ERROR(ValidatePackedGroupWeight(w));
  SHRINK_ASSIGN_OR_RETURN(std::vector<uint8_t> codes, UnpackCodes(w.codes, w.out * w.in, w.bits));
  const int64_t groups = NumGroups(w.in, w.group_size);
  std::vector<float> result(w.out * w.in);
  for (int64_t r = 0; r < w.out; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      const float s = HalfBitsToFloat(w.scales[r * groups + g]), z = HalfBitsToFloat(w.zeros[r * groups + g]);
      const int64_t end = std::min(w.in, (g + 1) * w.group_size);
      for (int64_t c = g * w.group_size; c < end; ++c) {
        result[r * w.in + c] = (static_cast<float>(codes[r * w.in + c]) - z) * s;
      }
    }
  }
  return result;
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

}  // namespace shrink::worker
