// MLM masking with torch's seeded generator: the same ids and seed give the same batch.
#include "worker/train/mlm_masking.h"

namespace shrink::worker {

MaskedBatch MaskForMlm(const torch::Tensor& ids, int64_t mask_id, const std::vector<int64_t>& special_ids,
                       int64_t vocab_size, at::Generator& generator) {
  torch::Tensor special = torch::zeros({vocab_size}, torch::kBool);
  for (int64_t id : special_ids) {
    if (id >= 0 && id < vocab_size) special[id] = true;
  }
  const torch::Tensor ordinary_ids = torch::nonzero(special.logical_not()).flatten();
  const torch::Tensor maskable = special.index_select(0, ids.flatten()).logical_not().view(ids.sizes());
  torch::Tensor chosen = torch::rand(ids.sizes(), generator).lt(kMlmMaskFraction).logical_and(maskable);
  if (!chosen.any().item<bool>() && maskable.any().item<bool>()) {
    // A short batch drew no position: choose the first ordinary one so the loss has a target.
    chosen.view(-1)[torch::nonzero(maskable.flatten())[0][0]] = true;
  }
  const torch::Tensor how = torch::rand(ids.sizes(), generator);
  const torch::Tensor random = ordinary_ids.index_select(
      0, torch::randint(ordinary_ids.size(0), ids.sizes(), generator, torch::kLong).flatten()).view(ids.sizes());
  MaskedBatch batch;
  batch.inputs = ids.clone();
  batch.inputs.masked_fill_(chosen.logical_and(how.lt(0.8)), mask_id);
  const torch::Tensor replace = chosen.logical_and(how.ge(0.8)).logical_and(how.lt(0.9));
  batch.inputs = torch::where(replace, random, batch.inputs);
  batch.labels = ids.masked_fill(chosen.logical_not(), -100);
  return batch;
}

}  // namespace shrink::worker
