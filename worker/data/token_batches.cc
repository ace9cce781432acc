#include "worker/data/token_batches.h"

#include <algorithm>
#include <numeric>

#include "worker/tokenizers/tokenizer.h"

namespace shrink::worker {

std::vector<TokenBatch> TokenizeBatches(const Tokenizer& tokenizer, const std::vector<std::string>& texts,
                                        const std::vector<int64_t>& labels, bool language_model,
                                        int64_t max_length, int64_t batch_size, int64_t pad) {
  std::vector<std::vector<int64_t>> sequences;
  sequences.reserve(texts.size());
  const SpecialTokens& specials = tokenizer.Specials();
  const int64_t start = specials.bos >= 0 ? specials.bos : specials.eos;
  for (const std::string& text : texts) {
    std::vector<int64_t> ids;
    if (language_model) {
      if (start >= 0) ids.push_back(start);
      for (int64_t id : tokenizer.Encode(text)) {
        if (static_cast<int64_t>(ids.size()) >= max_length) break;
        ids.push_back(id);
      }
    } else {
      ids = EncodeForClassification(tokenizer, text, static_cast<int>(max_length));
    }
    if (ids.empty()) ids.push_back(pad);
    sequences.push_back(std::move(ids));
  }
  std::vector<size_t> order(sequences.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return sequences[a].size() < sequences[b].size(); });
  std::vector<TokenBatch> batches;
  for (size_t begin = 0; begin < order.size(); begin += batch_size) {
    const size_t end = std::min(order.size(), begin + static_cast<size_t>(batch_size));
    int64_t longest = 0;
    for (size_t i = begin; i < end; ++i) longest = std::max<int64_t>(longest, sequences[order[i]].size());
    const int64_t rows = static_cast<int64_t>(end - begin);
    torch::Tensor ids = torch::full({rows, longest}, pad, torch::kInt64);
    torch::Tensor mask = torch::zeros({rows, longest}, torch::kInt64);
    torch::Tensor y = torch::full({rows}, -1, torch::kInt64);
    auto id_access = ids.accessor<int64_t, 2>();
    auto mask_access = mask.accessor<int64_t, 2>();
    for (int64_t r = 0; r < rows; ++r) {
      const auto& seq = sequences[order[begin + r]];
      for (size_t t = 0; t < seq.size(); ++t) {
        id_access[r][t] = seq[t];
        mask_access[r][t] = 1;
      }
      if (!labels.empty()) y[r] = labels[order[begin + r]];
    }
    batches.push_back({ids, mask, y});
  }
  return batches;
}

}  // namespace shrink::worker
