// How a model is measured: threads, batch shapes, runs. Header-only and torch-free, so the
// model backends can shape their latency probes without linking eval/.
#pragma once

#include <cstdint>

#include "common/recall.h"

namespace shrink::worker {

// Options for measuring a model.
struct EvalOptions {
  int threads = 0;           // intra-op threads for latency and accuracy; 0 = all cores
  int latency_batch = 32;    // images per timed forward pass (CNN)
  int text_latency_batch = 8;  // sequences per timed forward pass (transformers)
  int sequence_length = 128;   // tokens per synthetic sequence (transformer latency and FLOPs)
  int warmup_runs = 3;
  int timed_runs = 15;       // latency_ms = median of these
  bool time_latency = true;  // false: no timed passes (latency_ms 0), for callers that time elsewhere
  int64_t max_examples = 0;  // accuracy on the first N examples of the split; 0 = all
  const RecallFlag* recalled = nullptr;  // checked between batches and timed runs: CANCELLED once set
};

}  // namespace shrink::worker
