// BERT's masking for masked-language-model pretraining (internal: pulls in torch): 15% of the
// ordinary tokens are chosen; of those 80% become the mask token, 10% a random ordinary token
// and 10% stay, and only the chosen positions are predicted.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace shrink::worker {

inline constexpr double kMlmMaskFraction = 0.15;

struct MaskedBatch {
  torch::Tensor inputs;  // [B, T] the ids the model reads
  torch::Tensor labels;  // [B, T] the original id where chosen, -100 elsewhere
};

// Masks `ids` [B, T] (int64, CPU) with `generator`. `special_ids` ([CLS], [SEP], padding, ...)
// are never chosen; random replacements are drawn from the ids that are not special. At least
// one position is chosen when the batch has an ordinary token, so the loss is always defined.
MaskedBatch MaskForMlm(const torch::Tensor& ids, int64_t mask_id, const std::vector<int64_t>& special_ids,
                       int64_t vocab_size, at::Generator& generator);

}  // namespace shrink::worker
