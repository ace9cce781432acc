// The reference CNN as a worker describes it, for tests that need a model
// description without loading a model.
#pragma once

#include <cstdint>
#include <string>

#include "shrink/v1/types.pb.h"

namespace shrink::testing {

// Bytes the description counts beyond the weights (config.json, headers).
inline constexpr int64_t kCnnDescriptionOverhead = 1000;

// One layer; params = out * in * kernel_elements + out (weights + bias).
v1::LayerInfo MakeLayer(const std::string& name, const std::string& kind, int64_t in, int64_t out,
                        int64_t kernel_elements, bool prunable, int64_t input_group);

// conv1 (1->32, 3x3), conv2 (32->64, 3x3), fc1 (3136->128, 49 inputs per
// conv2 channel), fc2 (128->10, not prunable); bytes = 4 * params + overhead.
v1::ModelDescription CnnDescription();

}  // namespace shrink::testing
