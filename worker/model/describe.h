// Building a backend's Describe() answer (internal to model/): its layers and totals.
#pragma once

#include <cstdint>
#include <string>

#include "shrink/v1/types.pb.h"

namespace shrink::worker {

// One entry of Describe(): shapes, params, FLOPs per example, and how pruning affects it.
shrink::v1::LayerInfo DescribeLayer(const std::string& name, const std::string& kind, int64_t in, int64_t out,
                                    int64_t kernel_elements, int64_t params, int64_t flops, bool prunable,
                                    int64_t input_group);

// Sets the description's params and FLOPs to its layers' sums, and its bytes on disk.
void SetDescriptionTotals(shrink::v1::ModelDescription* description, int64_t bytes);

}  // namespace shrink::worker
