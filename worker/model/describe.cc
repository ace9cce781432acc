#include "worker/model/describe.h"

namespace shrink::worker {

shrink::v1::LayerInfo DescribeLayer(const std::string& name, const std::string& kind, int64_t in, int64_t out,
                                    int64_t kernel_elements, int64_t params, int64_t flops, bool prunable,
                                    int64_t input_group) {
  shrink::v1::LayerInfo layer;
  layer.set_name(name);
  layer.set_kind(kind);
  layer.set_in_features(in);
  layer.set_out_features(out);
  layer.set_kernel_elements(kernel_elements);
  layer.set_params(params);
  layer.set_flops(flops);
  layer.set_prunable(prunable);
  layer.set_input_group(input_group);
  return layer;
}

void SetDescriptionTotals(shrink::v1::ModelDescription* description, int64_t bytes) {
  int64_t params = 0, flops = 0;
  for (const auto& layer : description->layers()) {
    params += layer.params();
    flops += layer.flops();
  }
  description->set_params(params);
  description->set_flops(flops);
  description->set_bytes(bytes);
}

}  // namespace shrink::worker
