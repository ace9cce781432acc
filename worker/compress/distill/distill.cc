#include "worker/compress/distill/distill.h"

#include <algorithm>
#include <cmath>

namespace shrink::worker {

int64_t DistillSteps(const std::vector<shrink::v1::LayerAction>& actions, int64_t max_steps) {
  if (max_steps <= 0) return 0;
  for (const auto& action : actions) {
    if (action.distill() > 0) return max_steps;
  }
  return 0;
}

torch::Tensor SoftTargetLoss(const torch::Tensor& student, const torch::Tensor& teacher, double temperature,
                             const torch::Tensor& row_weights) {
  torch::Tensor log_p_student = torch::log_softmax(student / temperature, -1);
  torch::Tensor log_p_teacher = torch::log_softmax(teacher / temperature, -1);
  torch::Tensor per_row = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(-1);
  const double scale = temperature * temperature;
  if (!row_weights.defined()) return per_row.mean() * scale;
  return (per_row * row_weights).sum() / row_weights.sum().clamp_min(1.0) * scale;
}

torch::Tensor RelativeSquaredError(const torch::Tensor& student, const torch::Tensor& teacher) {
  return (student - teacher).pow(2).sum() / teacher.pow(2).sum().clamp_min(1e-12);
}

double SecondStagePrune(int64_t original, int64_t current, double ratio) {
  const int64_t target = std::max<int64_t>(1, original - static_cast<int64_t>(std::llround(ratio * original)));
  if (current <= target) return 0.0;
  return static_cast<double>(current - target) / static_cast<double>(current);
}

}  // namespace shrink::worker
