// Shared fixtures for the model tests: the Debian Fashion-MNIST, small random
// and tiny-trained CNNs, temp dirs.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>
#include <string>

#include "common/files.h"
#include "worker/nn/cnn.h"
#include "worker/checkpoint/cnn_checkpoint.h"
#include "worker/model/model.h"
#include "worker/model/model_impl.h"
#include "worker/nn/cnn_build.h"
#include "worker/model/cnn_backend.h"

namespace shrink::worker::testing {

// The Debian dataset, loaded once per test process.
inline const ImageDataset& FashionMnist() {
  static std::shared_ptr<const ImageDataset> data = [] {
    auto loaded = ImageDataset::LoadFashionMnist(DebianFashionMnistFiles());
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return loaded.ok() ? *loaded : nullptr;
  }();
  return *data;
}

// A temp dir removed when the object dies.
class TempDir {
 public:
  TempDir() {
    auto dir = MakeTempDir("shrink-worker-test-");
    EXPECT_TRUE(dir.ok()) << dir.status();
    path_ = dir.ok() ? *dir : "/tmp";
  }
  ~TempDir() { RemoveAll(path_); }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// An untrained reference CNN with seeded random weights, saved to `dir` and loaded back.
inline std::unique_ptr<Model> RandomCnn(const std::string& dir, uint64_t seed = 7) {
  torch::manual_seed(seed);
  Cnn net;
  EXPECT_TRUE(WriteCnnCheckpoint(CheckpointFromModule(net), dir).ok());
  auto model = Model::Load(dir);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::move(*model) : nullptr;
}

// Logits of `model` for `images` (eval mode, no grad).
inline torch::Tensor Logits(const Model& model, const torch::Tensor& images) {
  torch::NoGradGuard no_grad;
  return model.impl->cnn()->net->forward(images);
}

// A deterministic batch of normalized-looking images.
inline torch::Tensor RandomImages(int64_t count, uint64_t seed = 3) {
  torch::manual_seed(seed);
  return torch::randn({count, 1, kCnnImageSide, kCnnImageSide});
}

}  // namespace shrink::worker::testing
