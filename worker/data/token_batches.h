// Texts as padded token-id batches, the form the transformers train and measure on
// (internal: pulls in torch).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace shrink::worker {

class Tokenizer;  // worker/tokenizers/tokenizer.h

// A batch of token ids [B, T] and its mask [B, T] (1 = token), plus labels [B] for classification.
struct TokenBatch {
  torch::Tensor ids, mask, labels;
};

// Token batches of `texts` (sorted by length so padding is small), `batch_size` sequences each.
// Classification: [CLS] text [SEP] as the tokenizer frames it; LM: a leading BOS/EOS then the
// text. Truncated to `max_length`, padded with `pad`.
std::vector<TokenBatch> TokenizeBatches(const Tokenizer& tokenizer, const std::vector<std::string>& texts,
                                        const std::vector<int64_t>& labels, bool language_model,
                                        int64_t max_length, int64_t batch_size, int64_t pad);

}  // namespace shrink::worker
