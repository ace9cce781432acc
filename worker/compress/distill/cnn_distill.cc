#include "worker/compress/distill/cnn_distill.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/checkpoint/safetensors_torch.h"
#include "worker/compress/distill/distill.h"
#include "worker/nn/cnn_build.h"

namespace shrink::worker {
namespace {

// The feature maps CnnImpl::forward records, in its order.
const std::vector<std::string>& FeatureLayers() {
  static const std::vector<std::string> layers = {"conv1", "conv2", "fc1"};
  return layers;
}

}  // namespace

absl::StatusOr<CnnCheckpoint> DistillCnn(const CnnCheckpoint& teacher_checkpoint, const CnnCheckpoint& student_checkpoint,
                                         const torch::Tensor& images, const torch::Tensor& labels,
                                         const CnnDistillPlan& plan) {
  if (plan.steps <= 0 || !images.defined() || images.size(0) == 0) return student_checkpoint;
  if (!teacher_checkpoint.IsUncompressed()) return absl::FailedPreconditionError("the distillation teacher must be fp32");
  for (const auto& layer : CnnLayerNames()) {
    if (student_checkpoint.storage.at(layer).scheme != kSchemeFloat32) {
      return absl::FailedPreconditionError(absl::StrCat("distilling needs fp32 weights; layer ", layer, " is not"));
    }
  }
  SHRINK_ASSIGN_OR_RETURN(Cnn teacher, BuildCnn(teacher_checkpoint));
  SHRINK_ASSIGN_OR_RETURN(Cnn student, BuildCnn(student_checkpoint));
  teacher->eval();
  student->train();
  const double learning_rate = plan.options.learning_rate > 0 ? plan.options.learning_rate : kCnnDistillLearningRate;
  torch::optim::Adam optimizer(student->parameters(), torch::optim::AdamOptions(learning_rate));
  torch::manual_seed(plan.options.seed);
  auto generator = at::detail::createCPUGenerator(plan.options.seed);
  const int64_t batch = std::clamp<int64_t>(plan.options.batch_size, 1, images.size(0));
  torch::Tensor order;
  int64_t position = 0;
  for (int64_t step = 0; step < plan.steps; ++step) {
    SHRINK_RETURN_IF_ERROR(CheckNotRecalled(plan.options.recalled));
    if (!order.defined() || position + batch > order.size(0)) {
      order = torch::randperm(images.size(0), generator, torch::kInt64);
      position = 0;
    }
    torch::Tensor index = order.narrow(0, position, batch);
    position += batch;
    torch::Tensor x = images.index_select(0, index);
    std::vector<torch::Tensor> teacher_features, student_features;
    torch::Tensor teacher_logits;
    {
      torch::NoGradGuard no_grad;
      teacher_logits = teacher->forward(x, &teacher_features);
    }
    torch::Tensor logits = student->forward(x, &student_features);
    torch::Tensor loss = torch::nn::functional::cross_entropy(logits, labels.index_select(0, index)) +
                         SoftTargetLoss(logits, teacher_logits, plan.options.temperature);
    for (size_t i = 0; i < FeatureLayers().size(); ++i) {
      const std::string& layer = FeatureLayers()[i];
      auto weight = plan.layer_weight.find(layer);
      if (weight == plan.layer_weight.end() || weight->second <= 0) continue;
      torch::Tensor target = teacher_features[i];
      if (auto units = plan.teacher_units.find(layer); units != plan.teacher_units.end()) {
        target = target.index_select(1, units->second);
      }
      loss = loss + weight->second * RelativeSquaredError(student_features[i], target);
    }
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
  student->eval();
  CnnCheckpoint trained = student_checkpoint;
  CnnCheckpoint learned = CheckpointFromModule(student);
  for (auto& [name, tensor] : trained.tensors) tensor = learned.tensors.at(name);
  SHRINK_RETURN_IF_ERROR(CheckAllFinite(learned.tensors, "distillation diverged: the student's tensor "));
  return trained;
}

}  // namespace shrink::worker
