// The reference CNN's fixed geometry and per-layer widths: what its config.json describes
// and its module is built from. Torch-free.
#pragma once

#include <cstdint>

namespace shrink::worker {

inline constexpr int64_t kCnnImageSide = 28;
inline constexpr int64_t kCnnKernel = 3;
inline constexpr int64_t kCnnFeatureSide = 7;  // 28 after two 2x2 max-pools
inline constexpr int64_t kCnnFeaturePixels = kCnnFeatureSide * kCnnFeatureSide;
inline constexpr double kCnnDropout = 0.25;

// Channel / neuron counts of each layer.
struct CnnWidths {
  int64_t in_channels = 1;
  int64_t conv1 = 32;
  int64_t conv2 = 64;
  int64_t fc1 = 128;
  int64_t classes = 10;
};

}  // namespace shrink::worker
