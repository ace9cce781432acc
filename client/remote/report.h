// What the CLI prints: result tables, JSON results, progress lines.
#pragma once

#include <string>
#include <vector>

#include "shrink/v1/types.pb.h"

namespace shrink::client {

// One row of a result table: a method and its test-split evaluation.
struct ResultRow {
  std::string method;
  v1::Evaluation evaluation;
  bool goal_met = false;
  bool has_goal = true;  // false for a fixed policy (shrink apply): the column shows "-"
};

// A baseline row (the uncompressed model) followed by one row per method:
// size %, speedup x, retention %, accuracy %, latency, goal met.
std::string FormatResultTable(const std::vector<ResultRow>& rows);

// The JSON a script reads: bytes, params, latency_ms, accuracy, retention,
// size_ratio, speedup, plus the job's id, state and goal_met.
std::string FormatJobJson(const v1::Job& job);

// The same figures for one evaluation against its baseline (shrink apply).
std::string FormatEvaluationJson(const v1::Evaluation& evaluation);

// One-line progress: "[#####-----] 8/16 evaluated | best reward 1.21 ...".
std::string FormatProgress(const v1::Job& job, double elapsed_seconds);

// A human summary of one job for `shrink status`.
std::string FormatJobStatus(const v1::Job& job);

}  // namespace shrink::client
