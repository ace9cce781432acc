#include "tests/test_util/cnn_description.h"

namespace shrink::testing {

v1::LayerInfo MakeLayer(const std::string& name, const std::string& kind, int64_t in, int64_t out,
                        int64_t kernel_elements, bool prunable, int64_t input_group) {
  v1::LayerInfo layer;
  layer.set_name(name);
  layer.set_kind(kind);
  layer.set_in_features(in);
  layer.set_out_features(out);
  layer.set_kernel_elements(kernel_elements);
  layer.set_params(out * in * kernel_elements + out);
  layer.set_prunable(prunable);
  layer.set_input_group(input_group);
  return layer;
}

v1::ModelDescription CnnDescription() {
  v1::ModelDescription model;
  model.set_model_type("shrink-cnn");
  *model.add_layers() = MakeLayer("conv1", "conv2d", 1, 32, 9, true, 1);
  *model.add_layers() = MakeLayer("conv2", "conv2d", 32, 64, 9, true, 1);
  *model.add_layers() = MakeLayer("fc1", "linear", 3136, 128, 1, true, 49);
  *model.add_layers() = MakeLayer("fc2", "linear", 128, 10, 1, false, 1);
  int64_t params = 0;
  for (const auto& layer : model.layers()) params += layer.params();
  model.set_params(params);
  model.set_bytes(4 * params + kCnnDescriptionOverhead);
  return model;
}

}  // namespace shrink::testing
