#include "worker/nn/cnn.h"

#include <algorithm>

#include "worker/nn/torch_device.h"

namespace shrink::worker {

CnnImpl::CnnImpl(const CnnWidths& widths) : widths_(widths) {
  auto conv = [](int64_t in, int64_t out) {
    return torch::nn::Conv2dOptions(in, out, kCnnKernel).padding(kCnnKernel / 2);
  };
  conv1 = register_module("conv1", torch::nn::Conv2d(conv(widths.in_channels, widths.conv1)));
  conv2 = register_module("conv2", torch::nn::Conv2d(conv(widths.conv1, widths.conv2)));
  fc1 = register_module("fc1", torch::nn::Linear(widths.conv2 * kCnnFeaturePixels, widths.fc1));
  fc2 = register_module("fc2", torch::nn::Linear(widths.fc1, widths.classes));
  dropout = register_module("dropout", torch::nn::Dropout(kCnnDropout));
}

torch::Tensor CnnImpl::forward(torch::Tensor x, std::vector<torch::Tensor>* features) {
  x = torch::max_pool2d(torch::relu(conv1(x)), 2);
  if (features != nullptr) features->push_back(x);
  x = torch::max_pool2d(torch::relu(conv2(x)), 2);
  if (features != nullptr) features->push_back(x);
  x = x.flatten(1);
  x = torch::relu(fc1 ? fc1(x) : fc1_int8->Forward(x));
  if (features != nullptr) features->push_back(x);
  x = dropout(x);
  return fc2 ? fc2(x) : fc2_int8->Forward(x);
}

void CnnImpl::UseInt8(const std::string& layer, std::shared_ptr<const Int8Linear> kernel) {
  if (layer == "fc1") {
    unregister_module("fc1");
    fc1 = nullptr;
    fc1_int8 = std::move(kernel);
  } else if (layer == "fc2") {
    unregister_module("fc2");
    fc2 = nullptr;
    fc2_int8 = std::move(kernel);
  } else {
    TORCH_CHECK(false, "layer ", layer, " has no int8 kernel");
  }
}

std::pair<double, int64_t> CnnAccuracy(Cnn& net, const torch::Tensor& images, const torch::Tensor& labels,
                                       int64_t limit, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const int64_t total = limit > 0 ? std::min(limit, labels.size(0)) : labels.size(0);
  int64_t correct = 0;
  const torch::Device device = ModuleDevice(*net);  // batches go where the model is
  for (int64_t start = 0; start < total; start += batch_size) {
    const int64_t count = std::min(batch_size, total - start);
    torch::Tensor logits = net->forward(images.narrow(0, start, count).to(device));
    correct += logits.argmax(1).to(torch::kCPU).eq(labels.narrow(0, start, count)).sum().item<int64_t>();
  }
  return {total > 0 ? static_cast<double>(correct) / static_cast<double>(total) : 0.0, total};
}

}  // namespace shrink::worker
