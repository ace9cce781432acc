// `shrink report`: one self-contained HTML page (inline SVG, no external files or
// scripts from elsewhere) with a job's summary and plots.
#pragma once

#include <string>
#include <vector>

#include "shrink/v1/types.pb.h"

namespace shrink::client {

// A point of the size-retention plane that no other candidate beats on both axes
// (smaller or equal size and higher or equal retention, one of them strictly).
struct ParetoPoint {
  double size_ratio;
  double retention;
  int64_t candidate_id;
};

// The Pareto front of the successful candidates, sorted by size ratio ascending.
std::vector<ParetoPoint> ParetoFront(const std::vector<v1::CandidateSummary>& candidates);

// The page: summary table, reward per evaluation (with the running best), size vs
// retention scatter with the Pareto front and the goal lines, per-layer prune ratio
// and bit width of the best policy, and the candidate table. Every plot is an <svg>
// with id reward-plot / pareto-plot / layers-plot; data points are <circle> or <rect>
// elements with class "point" / "front" / "bar-prune" / "bar-bits".
std::string FormatHtmlReport(const v1::Job& job, const std::vector<v1::CandidateSummary>& candidates);

}  // namespace shrink::client
