// The reference Fashion-MNIST CNN as a LibTorch module (internal: pulls in torch).
// conv1(3x3) -> ReLU -> maxpool2 -> conv2(3x3) -> ReLU -> maxpool2 -> flatten
// -> fc1 -> ReLU -> dropout -> fc2. Widths are parameters so pruned models fit.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "worker/checkpoint/cnn_config.h"
#include "worker/nn/int8_linear.h"

namespace shrink::worker {

class CnnImpl : public torch::nn::Module {
 public:
  explicit CnnImpl(const CnnWidths& widths = CnnWidths());

  // Logits [N, classes] for images [N, in_channels, 28, 28]. When `features` is given, the
  // feature maps of conv1, conv2 (after ReLU and pooling) and fc1 (after ReLU) go into it.
  torch::Tensor forward(torch::Tensor x, std::vector<torch::Tensor>* features = nullptr);

  // Makes `layer` ("fc1" or "fc2") run through an int8 kernel; its fp32 Linear is dropped.
  void UseInt8(const std::string& layer, std::shared_ptr<const Int8Linear> kernel);

  const CnnWidths& widths() const { return widths_; }

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};  // null when the layer runs in int8
  torch::nn::Dropout dropout{nullptr};
  std::shared_ptr<const Int8Linear> fc1_int8, fc2_int8;

 private:
  CnnWidths widths_;
};
TORCH_MODULE(Cnn);

// Top-1 accuracy of `net` (in eval mode, no grad) on the first `limit` examples (0 = all),
// in batches of `batch_size`; also returns the number of examples used.
std::pair<double, int64_t> CnnAccuracy(Cnn& net, const torch::Tensor& images, const torch::Tensor& labels,
                                       int64_t limit = 0, int64_t batch_size = 500);

}  // namespace shrink::worker
