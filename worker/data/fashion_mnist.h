// ImageDataset's torch side (internal): the split tensors behind the facade.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "worker/data/image_dataset.h"

namespace shrink::worker {

// Per-pixel normalization of Fashion-MNIST (mean and std of the training images).
inline constexpr float kFashionMnistMean = 0.2860f;
inline constexpr float kFashionMnistStd = 0.3530f;
// The ten classes' names, by label.
inline constexpr const char* kFashionMnistClasses[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                       "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
// The last this-many training images form the validation split.
inline constexpr int64_t kValidationExamples = 5000;

struct ImageDataset::Impl {
  // One split: float [N,1,28,28] normalized images and int64 [N] labels (views share storage).
  struct Split {
    torch::Tensor images;
    torch::Tensor labels;
  };
  Split train, validation, test;

  // The split called `name`, or nullptr.
  const Split* Find(const std::string& name) const;
};

// The split `name` of `data`, or InvalidArgument naming the known splits.
absl::StatusOr<const ImageDataset::Impl::Split*> FindSplit(const ImageDataset& data, const std::string& name);

// The bytes of `path`, gunzipped when they are gzip; `what` names the file in errors.
absl::StatusOr<std::string> ReadMaybeGzip(const std::string& path, const std::string& what);

// Parses an idx file image (gzip or raw); `what` names it in errors. Exposed for tests.
// Returns the dims and the payload (uint8 bytes after the header).
struct IdxFile {
  std::vector<int64_t> dims;
  std::string payload;
};
absl::StatusOr<IdxFile> ParseIdx(const std::string& bytes, const std::string& what, int expected_dims);

}  // namespace shrink::worker
