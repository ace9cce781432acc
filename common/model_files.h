// The files of a model folder, as Shrink reads and writes them (Hugging Face's names).
#pragma once

#include <string>
#include <vector>

namespace shrink {

inline constexpr char kModelConfigFile[] = "config.json";
inline constexpr char kModelWeightsFile[] = "model.safetensors";

// The tokenizer files a transformer folder may carry; they travel with its model.
inline const std::vector<std::string>& TokenizerFileNames() {
  static const std::vector<std::string> names = {"vocab.txt", "vocab.json", "merges.txt", "tokenizer_config.json",
                                                 "special_tokens_map.json"};
  return names;
}

}  // namespace shrink
