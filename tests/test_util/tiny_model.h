// A small reference CNN for tests that need a real model.
#pragma once

#include <string>

namespace shrink::testing {

// The folder of a CNN trained briefly (1 epoch on 3000 examples) by the real
// `shrink train`, once per build tree. Training is deterministic, so tests
// running in parallel that both train write identical files.
std::string TinyTrainedModel();

}  // namespace shrink::testing
