#include "worker/checkpoint/safetensors_torch.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace shrink::worker {
namespace {

absl::StatusOr<torch::ScalarType> ScalarTypeOf(SafetensorsDtype dtype) {
  switch (dtype) {
    case SafetensorsDtype::kBool: return torch::kBool;
    case SafetensorsDtype::kU8: return torch::kUInt8;
    case SafetensorsDtype::kI8: return torch::kInt8;
    case SafetensorsDtype::kI16: return torch::kInt16;
    case SafetensorsDtype::kF16: return torch::kFloat16;
    case SafetensorsDtype::kBF16: return torch::kBFloat16;
    case SafetensorsDtype::kI32: return torch::kInt32;
    case SafetensorsDtype::kF32: return torch::kFloat32;
    case SafetensorsDtype::kI64: return torch::kInt64;
    case SafetensorsDtype::kF64: return torch::kFloat64;
    default: break;
  }
  return absl::UnimplementedError(absl::StrCat("dtype ", DtypeName(dtype), " has no torch equivalent"));
}

absl::StatusOr<SafetensorsDtype> DtypeOf(torch::ScalarType type) {
  switch (type) {
    case torch::kBool: return SafetensorsDtype::kBool;
    case torch::kUInt8: return SafetensorsDtype::kU8;
    case torch::kInt8: return SafetensorsDtype::kI8;
    case torch::kInt16: return SafetensorsDtype::kI16;
    case torch::kFloat16: return SafetensorsDtype::kF16;
    case torch::kBFloat16: return SafetensorsDtype::kBF16;
    case torch::kInt32: return SafetensorsDtype::kI32;
    case torch::kFloat32: return SafetensorsDtype::kF32;
    case torch::kInt64: return SafetensorsDtype::kI64;
    case torch::kFloat64: return SafetensorsDtype::kF64;
    default: break;
  }
  return absl::UnimplementedError(absl::StrCat("torch dtype ", c10::toString(type), " has no safetensors form"));
}

}  // namespace

absl::StatusOr<torch::Tensor> ToTorch(const SafetensorsTensorView& view) {
  auto type = ScalarTypeOf(view.dtype);
  if (!type.ok()) return type.status();
  torch::Tensor out = torch::empty(view.shape, torch::TensorOptions().dtype(*type));
  if (out.nbytes() != static_cast<size_t>(view.size)) {
    return absl::InternalError(absl::StrCat("tensor byte size ", out.nbytes(), " != ", view.size));
  }
  if (view.size > 0) std::memcpy(out.data_ptr(), view.data, static_cast<size_t>(view.size));
  SHRINK_RETURN_IF_ERROR(CheckFinite(out));
  return out;
}

absl::Status CheckFinite(const torch::Tensor& tensor) {
  if (!tensor.is_floating_point() || tensor.numel() == 0) return absl::OkStatus();
  const torch::Tensor wide = tensor.to(torch::kFloat32);
  const torch::Tensor finite = torch::isfinite(wide);
  if (finite.all().item<bool>()) return absl::OkStatus();
  const int64_t nan = torch::isnan(wide).sum().item<int64_t>();
  const int64_t bad = tensor.numel() - finite.sum().item<int64_t>();
  return absl::InvalidArgumentError(
      absl::StrCat(bad, " of ", tensor.numel(), " values are NaN or infinite (", nan, " NaN)"));
}

absl::Status CheckAllFinite(const std::map<std::string, torch::Tensor>& tensors, const std::string& what) {
  for (const auto& [name, tensor] : tensors) {
    absl::Status finite = CheckFinite(tensor);
    if (!finite.ok()) return absl::InvalidArgumentError(absl::StrCat(what, name, ": ", finite.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<SafetensorsTensor> FromTorch(const torch::Tensor& tensor) {
  auto dtype = DtypeOf(tensor.scalar_type());
  if (!dtype.ok()) return dtype.status();
  torch::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
  SafetensorsTensor out;
  out.dtype = *dtype;
  out.shape = cpu.sizes().vec();
  out.bytes.assign(static_cast<const char*>(cpu.data_ptr()), cpu.nbytes());
  return out;
}

}  // namespace shrink::worker
