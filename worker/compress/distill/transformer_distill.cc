#include "worker/compress/distill/transformer_distill.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/checkpoint/safetensors_torch.h"
#include "worker/compress/distill/distill.h"
#include "worker/nn/transformer_build.h"

namespace shrink::worker {
namespace {

constexpr double kWeightDecay = 0.01;
constexpr double kWarmupFraction = 0.1;

// KL(teacher || student) between attention distributions, summed over keys and averaged over
// the heads and the real (unmasked) query positions. Probabilities [B, heads, T, T].
torch::Tensor AttentionLoss(const torch::Tensor& student, const torch::Tensor& teacher, const torch::Tensor& mask) {
  torch::Tensor per_query =
      (teacher * (teacher.clamp_min(1e-12).log() - student.clamp_min(1e-12).log())).sum(-1);  // [B, heads, T]
  torch::Tensor weights = mask.to(torch::kFloat32).unsqueeze(1).expand_as(per_query);
  return (per_query * weights).sum() / weights.sum().clamp_min(1.0);
}

// The plan's loss on one batch: task + soft targets + weighted block terms.
torch::Tensor DistillLoss(Transformer& student, Transformer& teacher, const TokenBatch& batch,
                          const TransformerDistillPlan& plan, double temperature) {
  const bool lm = student->config().is_decoder();
  TransformerTrace teacher_trace;
  torch::Tensor teacher_logits;
  {
    torch::NoGradGuard no_grad;
    torch::Tensor hidden = teacher->Encode(batch.ids, batch.mask, &teacher_trace);
    teacher_logits = lm ? teacher->LmLogits(hidden) : teacher->Classify(hidden);
  }
  TransformerTrace student_trace;
  torch::Tensor hidden = student->Encode(batch.ids, batch.mask, &student_trace);
  torch::Tensor logits = lm ? student->LmLogits(hidden) : student->Classify(hidden);
  torch::Tensor loss;
  if (lm) {
    // Next-token prediction at real tokens; soft targets at every real position.
    const int64_t t = batch.ids.size(1);
    const int64_t vocab = logits.size(2);
    torch::Tensor targets = batch.ids.narrow(1, 1, t - 1).masked_fill(batch.mask.narrow(1, 1, t - 1).eq(0), -100);
    loss = torch::nn::functional::cross_entropy(
        logits.narrow(1, 0, t - 1).reshape({-1, vocab}), targets.reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
    loss = loss + SoftTargetLoss(logits.reshape({-1, vocab}), teacher_logits.reshape({-1, vocab}), temperature,
                                 batch.mask.reshape({-1}).to(torch::kFloat32));
  } else {
    loss = torch::nn::functional::cross_entropy(logits, batch.labels,
                                                torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-1));
    loss = loss + SoftTargetLoss(logits, teacher_logits, temperature);
  }
  torch::Tensor token_mask = batch.mask.to(torch::kFloat32).unsqueeze(-1);
  for (size_t i = 0; i < plan.teacher_block.size(); ++i) {
    if (plan.block_weight[i] <= 0) continue;
    const int64_t j = plan.teacher_block[i];
    torch::Tensor feature = RelativeSquaredError(student_trace.hidden[i] * token_mask, teacher_trace.hidden[j] * token_mask);
    torch::Tensor attention = AttentionLoss(student_trace.attention[i],
                                            teacher_trace.attention[j].index_select(1, plan.teacher_heads[i]), batch.mask);
    loss = loss + plan.block_weight[i] * (feature + attention);
  }
  return loss;
}

}  // namespace

absl::StatusOr<TransformerWeights> DistillTransformer(const TransformerWeights& teacher_weights,
                                                      const TransformerWeights& student_weights,
                                                      const std::vector<TokenBatch>& train,
                                                      const TransformerDistillPlan& plan, DistillReport* report) {
  const int64_t blocks = student_weights.config.num_layers;
  if (static_cast<int64_t>(plan.teacher_block.size()) != blocks ||
      static_cast<int64_t>(plan.teacher_heads.size()) != blocks || static_cast<int64_t>(plan.block_weight.size()) != blocks) {
    return absl::InternalError(absl::StrCat("distillation plan covers ", plan.teacher_block.size(), " blocks, the student has ", blocks));
  }
  for (int64_t i = 0; i < blocks; ++i) {
    const int64_t j = plan.teacher_block[i];
    if (j < 0 || j >= teacher_weights.config.num_layers ||
        plan.teacher_heads[i].numel() != student_weights.config.layers[i].heads) {
      return absl::InternalError(absl::StrCat("distillation plan: student block ", i, " maps to no teacher block or heads"));
    }
  }
  if (plan.steps <= 0 || train.empty()) return student_weights;
  SHRINK_ASSIGN_OR_RETURN(Transformer teacher, BuildTransformer(teacher_weights));
  SHRINK_ASSIGN_OR_RETURN(Transformer student, BuildTransformer(student_weights));
  teacher->eval();
  student->train();
  const double learning_rate = plan.options.learning_rate > 0 ? plan.options.learning_rate : kTransformerDistillLearningRate;
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& item : student->named_parameters()) (item.value().dim() >= 2 ? decay : no_decay).push_back(item.value());
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(learning_rate).weight_decay(kWeightDecay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(learning_rate).weight_decay(0)));
  torch::optim::AdamW optimizer(groups, torch::optim::AdamWOptions(learning_rate));
  torch::manual_seed(plan.options.seed);
  std::mt19937_64 rng(plan.options.seed);
  std::vector<size_t> order(train.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const int64_t warmup = std::max<int64_t>(1, static_cast<int64_t>(kWarmupFraction * plan.steps));
  DistillReport local;
  for (int64_t step = 0; step < plan.steps; ++step) {
    SHRINK_RETURN_IF_ERROR(CheckNotRecalled(plan.options.recalled));
    const size_t position = static_cast<size_t>(step) % order.size();
    if (position == 0) std::shuffle(order.begin(), order.end(), rng);
    const TokenBatch& batch = train[order[position]];
    if (student->config().is_decoder() && batch.ids.size(1) < 2) continue;
    // Linear warm-up, then linear decay to zero at the last step.
    const double scale = step < warmup ? static_cast<double>(step + 1) / warmup
                                       : static_cast<double>(plan.steps - step) / (plan.steps - warmup + 1);
    for (auto& group : optimizer.param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(learning_rate * scale);
    }
    optimizer.zero_grad();
    torch::Tensor loss = DistillLoss(student, teacher, batch, plan, plan.options.temperature);
    loss.backward();
    torch::nn::utils::clip_grad_norm_(student->parameters(), 1.0);
    optimizer.step();
    const double value = loss.item<double>();
    if (local.steps == 0) local.first_loss = value;
    local.last_loss = value;
    ++local.steps;
  }
  student->eval();
  TransformerWeights trained = WeightsFromModule(student);
  SHRINK_RETURN_IF_ERROR(CheckAllFinite(trained.tensors, "distillation diverged: the student's tensor "));
  // The module's parameters are the stored tensors; everything else (storage, policy) stays.
  trained.config = student_weights.config;
  if (report != nullptr) *report = local;
  return trained;
}

}  // namespace shrink::worker
