// Fashion-MNIST behind a torch-free handle (the tensors live in data/fashion_mnist.h).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace shrink::worker {

// Fashion-MNIST in memory. Splits: "train" = first 55000 training images,
// "validation" = last 5000 training images, "test" = the 10000 t10k images.
// Immutable, safe to share across threads.
class ImageDataset {
 public:
  // `files` maps the standard file names (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
  // t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) to paths; gz or raw idx accepted.
  // Bad files -> InvalidArgument naming the file and what is wrong.
  static absl::StatusOr<std::shared_ptr<const ImageDataset>> LoadFashionMnist(
      const std::map<std::string, std::string>& files);

  // Examples in `split`; 0 for an unknown split.
  int64_t Size(const std::string& split) const;

  struct Impl;
  std::shared_ptr<const Impl> impl;  // torch tensors inside (float [N,1,28,28] normalized, int64 labels)
};

}  // namespace shrink::worker
