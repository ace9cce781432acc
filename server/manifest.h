// The job's manifest.json: what was searched and what came out — the policy,
// per-layer shapes and bits, every metric, and the whole search history. The
// coordinator writes it beside the finalized model files.
#pragma once

#include <string>
#include <vector>

#include "shrink/v1/types.pb.h"

namespace shrink::server {

// The manifest of a finished search as pretty-printed JSON. `model_config` is
// the compressed model's config.json as uploaded by the worker (embedded when
// it parses as JSON; empty = left out); `candidates` in id order.
std::string BuildManifest(const v1::Job& job, const v1::Evaluation& final_evaluation,
                          const std::vector<v1::CandidateSummary>& candidates,
                          const std::string& model_config);

}  // namespace shrink::server
