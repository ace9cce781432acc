#include "worker/eval/compare.h"

namespace shrink::worker {
namespace {

double Ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

}  // namespace

double Retention(double candidate_accuracy, double candidate_perplexity, double baseline_accuracy,
                 double baseline_perplexity) {
  // Language models keep quality when perplexity stays low.
  if (baseline_perplexity > 0) return Ratio(baseline_perplexity, candidate_perplexity);
  return Ratio(candidate_accuracy, baseline_accuracy);
}

v1::Evaluation CompareToBaseline(const v1::Metrics& candidate, const v1::Metrics& baseline) {
  v1::Evaluation e;
  *e.mutable_candidate() = candidate;
  *e.mutable_baseline() = baseline;
  e.set_retention(Retention(candidate.accuracy(), candidate.perplexity(), baseline.accuracy(), baseline.perplexity()));
  e.set_size_ratio(Ratio(static_cast<double>(candidate.bytes()), static_cast<double>(baseline.bytes())));
  e.set_speedup(Ratio(baseline.latency_ms(), candidate.latency_ms()));
  e.set_flops_ratio(Ratio(static_cast<double>(candidate.flops()), static_cast<double>(baseline.flops())));
  e.set_params_ratio(Ratio(static_cast<double>(candidate.params()), static_cast<double>(baseline.params())));
  return e;
}

}  // namespace shrink::worker
