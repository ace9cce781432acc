// Fuzz target: the policy JSON parser (common/policy). A parsed policy must
// print back to JSON that parses again, and resolve against the reference
// CNN's layers without crashing.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto policy = shrink::ParsePolicyJson(text);
  if (!policy.ok()) return 0;
  auto again = shrink::ParsePolicyJson(shrink::PolicyToJson(*policy));
  if (!again.ok()) __builtin_trap();  // what we print must parse
  shrink::v1::ModelDescription model;
  for (const char* name : {"conv1", "conv2", "fc1", "fc2"}) model.add_layers()->set_name(name);
  (void)shrink::ResolvePolicy(*policy, model);
  (void)shrink::PolicySummary(*policy);
  return 0;
}
