// Transformer checkpoints on disk in Hugging Face's layout (internal: pulls in
// torch): config.json + model.safetensors with HF's exact tensor names per
// family, read into Shrink's canonical names (the module's own parameter
// names, weights [out, in]) and written back. GPT-2's Conv1D weights are
// transposed and its fused c_attn split into q, k, v on the way in.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/checkpoint/transformer_config.h"

namespace shrink::worker {

// A transformer exactly as stored: canonical name -> tensor (fp32, fp16, int8 with
// "<module>.weight_scale" beside it, or group-wise packed as above).
struct TransformerWeights {
  TransformerConfig config;
  std::map<std::string, torch::Tensor> tensors;

  // True when every layer is fp32 and no policy was applied.
  bool IsUncompressed() const;
};

// One compressible layer (a policy entry) and the modules whose weights it owns.
struct TransformerLayerGroup {
  std::string name;                  // "embeddings", "encoder.layer.0.attention", ..., "head"
  std::string kind;                  // "embedding" | "attention" | "ffn" | "head"
  int block = -1;                    // block index for attention / ffn
  std::vector<std::string> modules;  // canonical module paths, e.g. "blocks.0.attention.q"
};

// The compressible layers of `config` in forward order.
std::vector<TransformerLayerGroup> TransformerLayerGroups(const TransformerConfig& config);

// The group called `name` in `groups`, or nullptr.
const TransformerLayerGroup* FindLayerGroup(const std::vector<TransformerLayerGroup>& groups, const std::string& name);

// "encoder.layer." (BERT, RoBERTa), "transformer.layer." (DistilBERT) or "h." (GPT-2).
std::string BlockPrefix(const TransformerConfig& config);

// Checks tensors against the config and the storage schemes; per-layer shapes (heads, FFN
// width) are taken from the tensors into config.layers. Errors name the tensor or field.
absl::Status ValidateTransformerWeights(TransformerWeights& weights, const std::string& origin);

// Reads config.json + model.safetensors from `dir` (with or without the base-model prefix,
// e.g. "bert."); a missing classification head is initialised randomly (seed 0), as HF does.
absl::StatusOr<TransformerWeights> ReadTransformerCheckpoint(const std::string& dir);

// The model.safetensors bytes under HF's names (prefixed as the ForSequenceClassification /
// LMHead model saves them; GPT-2's lm_head is tied and not written).
absl::StatusOr<std::string> TransformerSafetensorsBytes(const TransformerWeights& weights);

// Writes config.json + model.safetensors into `dir`, each atomically.
absl::Status WriteTransformerCheckpoint(const TransformerWeights& weights, const std::string& dir);

// Writes a pretrained model into `dir` as Hugging Face's BertForMaskedLM / RobertaForMaskedLM /
// GPT2LMHeadModel saves it: the base model without a classification head, plus `head` (its
// pretraining head under HF's names, e.g. cls.predictions.*), and config.json naming that
// architecture. Each file is written atomically.
absl::Status WritePretrainingCheckpoint(const TransformerWeights& weights,
                                        const std::map<std::string, torch::Tensor>& head, const std::string& dir);

// The fp32 weight a stored module weight stands for (widened / dequantized); errors name the tensor.
absl::StatusOr<torch::Tensor> ModuleWeightFp32(const TransformerWeights& weights, const std::string& module);

// The same for weights known to be valid (throws c10::Error otherwise).
torch::Tensor Float32ModuleWeight(const TransformerWeights& weights, const std::string& module);

// Input width of a module's weight: hidden, or the kept heads / FFN width for attention.o / ffn.fc2.
int64_t ModuleInputs(const TransformerWeights& weights, const std::string& module);

// The storage of policy layer `layer` (fp32 for "" and layers stored in fp32).
const LayerStorage& LayerStorageOf(const TransformerConfig& config, const std::string& layer);

// The storage of the policy layer that owns `module` (fp32 for unknown modules).
const LayerStorage& ModuleStorage(const TransformerConfig& config, const std::string& module);

}  // namespace shrink::worker
