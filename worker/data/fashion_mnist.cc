// Fashion-MNIST: idx files (optionally gzip-compressed) into normalized tensors.
#include "worker/data/fashion_mnist.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/status.h"
#include "common/task_files.h"
#include "worker/data/gzip.h"

namespace shrink::worker {
namespace {

constexpr const char* kTrainImages = kFashionMnistTrainImages;
constexpr const char* kTrainLabels = kFashionMnistTrainLabels;
constexpr const char* kTestImages = kFashionMnistTestImages;
constexpr const char* kTestLabels = kFashionMnistTestLabels;
constexpr int64_t kImageSide = 28;
constexpr int64_t kNumClasses = 10;

uint32_t BigEndian32(const std::string& bytes, size_t offset) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data() + offset);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Images [N,28,28] and labels [N] into one split's tensors.
absl::StatusOr<ImageDataset::Impl::Split> LoadPair(const std::map<std::string, std::string>& files,
                                                   const std::string& images_name, const std::string& labels_name) {
  for (const auto& name : {images_name, labels_name}) {
    if (files.find(name) == files.end()) {
      return absl::InvalidArgumentError(absl::StrCat("Fashion-MNIST: no path given for ", name));
    }
  }
  SHRINK_ASSIGN_OR_RETURN(std::string image_bytes, ReadMaybeGzip(files.at(images_name), images_name));
  SHRINK_ASSIGN_OR_RETURN(IdxFile images, ParseIdx(image_bytes, images_name, 3));
  image_bytes.clear();
  if (images.dims[1] != kImageSide || images.dims[2] != kImageSide) {
    return absl::InvalidArgumentError(absl::StrCat(images_name, ": images are ", images.dims[1], "x",
                                                   images.dims[2], ", expected 28x28"));
  }
  SHRINK_ASSIGN_OR_RETURN(std::string label_bytes, ReadMaybeGzip(files.at(labels_name), labels_name));
  SHRINK_ASSIGN_OR_RETURN(IdxFile labels, ParseIdx(label_bytes, labels_name, 1));
  if (labels.dims[0] != images.dims[0]) {
    return absl::InvalidArgumentError(absl::StrCat("count mismatch: ", images_name, " has ", images.dims[0],
                                                   " images but ", labels_name, " has ", labels.dims[0],
                                                   " labels"));
  }
  for (size_t i = 0; i < labels.payload.size(); ++i) {
    int label = static_cast<uint8_t>(labels.payload[i]);
    if (label >= kNumClasses) {
      return absl::InvalidArgumentError(
          absl::StrCat(labels_name, ": label ", label, " at index ", i, " is not a class 0..9"));
    }
  }
  const int64_t count = images.dims[0];
  ImageDataset::Impl::Split split;
  torch::Tensor raw = torch::from_blob(images.payload.data(), {count, 1, kImageSide, kImageSide}, torch::kUInt8);
  split.images = raw.to(torch::kFloat32).div_(255.0f).sub_(kFashionMnistMean).div_(kFashionMnistStd);
  split.labels = torch::from_blob(labels.payload.data(), {count}, torch::kUInt8).to(torch::kInt64);
  return split;
}

}  // namespace

absl::StatusOr<std::string> ReadMaybeGzip(const std::string& path, const std::string& what) {
  auto bytes = ReadFile(path);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": cannot read ", path, ": ", bytes.status().message()));
  }
  if (IsGzip(*bytes)) return Gunzip(*bytes, what);
  return std::move(*bytes);
}

absl::StatusOr<IdxFile> ParseIdx(const std::string& bytes, const std::string& what, int expected_dims) {
  if (bytes.size() < 4) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": truncated: ", bytes.size(), " bytes, no idx header"));
  }
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  if (p[0] != 0 || p[1] != 0 || p[2] != 0x08 || p[3] != expected_dims) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": bad idx magic 0x", absl::Hex(BigEndian32(bytes, 0), absl::kZeroPad8), ", expected 0x",
        absl::Hex(0x800 + expected_dims, absl::kZeroPad8), " (unsigned bytes, ", expected_dims, " dims)"));
  }
  const size_t header = 4 + 4 * static_cast<size_t>(expected_dims);
  if (bytes.size() < header) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": truncated: ", bytes.size(), " bytes, the idx header needs ", header));
  }
  IdxFile out;
  int64_t total = 1;
  for (int d = 0; d < expected_dims; ++d) {
    int64_t dim = BigEndian32(bytes, 4 + 4 * d);
    if (dim <= 0 || dim > (int64_t{1} << 31)) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": bad dimension ", d, " = ", dim));
    }
    out.dims.push_back(dim);
    total *= dim;
    if (total > (int64_t{1} << 40)) return absl::InvalidArgumentError(absl::StrCat(what, ": dims too large"));
  }
  const int64_t have = static_cast<int64_t>(bytes.size() - header);
  if (have < total) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": truncated: dims [", absl::StrJoin(out.dims, ", "),
                                                   "] need ", total, " data bytes, file has ", have));
  }
  if (have > total) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", have - total, " unexpected bytes after dims [",
                                                   absl::StrJoin(out.dims, ", "), "]"));
  }
  out.payload = bytes.substr(header);
  return out;
}

const ImageDataset::Impl::Split* ImageDataset::Impl::Find(const std::string& name) const {
  if (name == "train") return &train;
  if (name == "validation") return &validation;
  if (name == "test") return &test;
  return nullptr;
}

absl::StatusOr<const ImageDataset::Impl::Split*> FindSplit(const ImageDataset& data, const std::string& name) {
  const ImageDataset::Impl::Split* split = data.impl ? data.impl->Find(name) : nullptr;
  if (split == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown data split \"", name, "\" (known: train, validation, test)"));
  }
  return split;
}

absl::StatusOr<std::shared_ptr<const ImageDataset>> ImageDataset::LoadFashionMnist(
    const std::map<std::string, std::string>& files) {
  try {
    auto impl = std::make_shared<Impl>();
    SHRINK_ASSIGN_OR_RETURN(Impl::Split all_train, LoadPair(files, kTrainImages, kTrainLabels));
    const int64_t count = all_train.labels.size(0);
    if (count <= kValidationExamples) {
      return absl::InvalidArgumentError(absl::StrCat(kTrainImages, ": ", count, " images, need more than ",
                                                     kValidationExamples, " (the last ", kValidationExamples,
                                                     " are the validation split)"));
    }
    const int64_t train_count = count - kValidationExamples;
    impl->train = {all_train.images.narrow(0, 0, train_count), all_train.labels.narrow(0, 0, train_count)};
    impl->validation = {all_train.images.narrow(0, train_count, kValidationExamples),
                        all_train.labels.narrow(0, train_count, kValidationExamples)};
    SHRINK_ASSIGN_OR_RETURN(impl->test, LoadPair(files, kTestImages, kTestLabels));
    auto dataset = std::make_shared<ImageDataset>();
    dataset->impl = std::move(impl);
    return std::shared_ptr<const ImageDataset>(std::move(dataset));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("Fashion-MNIST: ", e.what()));
  }
}

int64_t ImageDataset::Size(const std::string& split) const {
  const Impl::Split* found = impl ? impl->Find(split) : nullptr;
  return found ? found->labels.size(0) : 0;
}

}  // namespace shrink::worker
