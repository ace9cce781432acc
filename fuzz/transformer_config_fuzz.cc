// Fuzz target: the transformers' config.json parser (worker/transformer_config).
// A config it accepts must print back (TransformerConfigJson) to a config.json
// that parses again to the same shape.
#include <cstddef>
#include <cstdint>
#include <string>

#include "worker/checkpoint/transformer_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = shrink::worker::ParseTransformerConfig(text, "config.json");
  if (!config.ok()) return 0;
  const auto& c = *config;
  if (c.hidden <= 0 || c.num_heads <= 0 || c.num_layers <= 0 || c.hidden % c.num_heads != 0) __builtin_trap();
  (void)c.head_dim();
  (void)c.max_sequence();
  auto again = shrink::worker::ParseTransformerConfig(shrink::worker::TransformerConfigJson(c), "again.json");
  if (!again.ok()) __builtin_trap();  // what we write must load
  if (again->family != c.family || again->hidden != c.hidden || again->num_layers != c.num_layers ||
      again->num_heads != c.num_heads || again->vocab_size != c.vocab_size || !(again->layers == c.layers)) {
    __builtin_trap();
  }
  return 0;
}
