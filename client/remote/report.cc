#include "client/remote/report.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/api_names.h"
#include "common/policy.h"
#include "common/runtimes.h"

namespace shrink::client {

std::string FormatResultTable(const std::vector<ResultRow>& rows) {
  // Each row's speedup is timed in its own task, baseline and candidate alternating, so the
  // latency column shows that pair: the baseline's time varies a little from row to row.
  std::string out = absl::StrFormat("%-18s %8s %10s %12s %10s %22s %6s\n", "method", "size %", "speedup x",
                                    "retention %", "accuracy", "latency ms (base->this)", "goal");
  if (!rows.empty()) {
    const v1::Metrics& base = rows.front().evaluation.baseline();
    absl::StrAppendFormat(&out, "%-18s %8.1f %10.2f %12.1f %9.2f%% %22s %6s\n", "baseline", 100.0, 1.0, 100.0,
                          100 * base.accuracy(), "-", "-");
  }
  for (const auto& row : rows) {
    const v1::Evaluation& e = row.evaluation;
    const std::string latency =
        absl::StrFormat("%.3f -> %.3f", e.baseline().latency_ms(), e.candidate().latency_ms());
    absl::StrAppendFormat(&out, "%-18s %8.1f %10.2f %12.1f %9.2f%% %22s %6s\n", row.method, 100 * e.size_ratio(),
                          e.speedup(), 100 * e.retention(), 100 * e.candidate().accuracy(), latency,
                          !row.has_goal ? "-" : row.goal_met ? "met" : "missed");
  }
  if (!rows.empty()) {
    const v1::Metrics& c = rows.front().evaluation.candidate();
    absl::StrAppendFormat(&out,
                          "(%s split, %d examples; latency = median of one %d-example batch, %d thread(s), the "
                          "uncompressed model and the row's model timed in alternating passes; speedup x = their "
                          "ratio)\n",
                          c.split(), c.examples(), c.latency_batch(), c.threads());
  }
  return out;
}

namespace {
// The task's quality figure of a measurement: perplexity for language models (retention is
// baseline / candidate perplexity there), else accuracy; absent without a task.
void AddQuality(const v1::Metrics& m, nlohmann::json* j) {
  if (m.examples() == 0) return;
  if (m.perplexity() > 0) {
    (*j)["perplexity"] = m.perplexity();
  } else {
    (*j)["accuracy"] = m.accuracy();
  }
}

// The measured figures of an evaluation, shared by every JSON result.
nlohmann::json EvaluationFields(const v1::Evaluation& e) {
  nlohmann::json j = {
      {"bytes", e.candidate().bytes()},
      {"params", e.candidate().params()},
      {"latency_ms", e.candidate().latency_ms()},
      {"threads", e.candidate().threads()},
      {"latency_batch", e.candidate().latency_batch()},
      {"split", e.candidate().split()},
      {"retention", e.retention()},
      {"size_ratio", e.size_ratio()},
      {"speedup", e.speedup()},
      {"flops_ratio", e.flops_ratio()},
      {"params_ratio", e.params_ratio()},
      {"baseline", {{"bytes", e.baseline().bytes()}, {"params", e.baseline().params()},
                    {"latency_ms", e.baseline().latency_ms()}}},
  };
  AddQuality(e.candidate(), &j);
  AddQuality(e.baseline(), &j["baseline"]);
  return j;
}
}  // namespace

std::string FormatJobJson(const v1::Job& job) {
  nlohmann::json j = EvaluationFields(job.final_evaluation());
  j["job"] = job.id();
  j["state"] = JobStateName(job.state());
  j["goal_met"] = job.goal_met();
  j["runtime"] = RuntimeOrDefault(job.spec().runtime());  // where latency_ms and speedup were timed
  j["evaluated"] = job.evaluated();
  j["policy"] = nlohmann::json::parse(PolicyToJson(job.best().policy()));
  if (!job.error().empty()) j["error"] = job.error();
  return j.dump(2);
}

std::string FormatEvaluationJson(const v1::Evaluation& evaluation) {
  return EvaluationFields(evaluation).dump(2);
}

std::string FormatProgress(const v1::Job& job, double elapsed_seconds) {
  constexpr int kWidth = 20;
  int budget = std::max(1, job.spec().budget());
  int done = std::min(job.evaluated(), budget);
  int filled = done * kWidth / budget;
  std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '-');
  std::string out = absl::StrFormat("[%s] %d/%d evaluated  %-10s", bar, done, budget, JobStateName(job.state()));
  if (job.best().outcome() == "ok") {
    const v1::Evaluation& e = job.best().evaluation();
    absl::StrAppendFormat(&out, "  best: reward %.3f, size %.1f%%, retention %.1f%%, speedup %.2fx",
                          job.best().reward(), 100 * e.size_ratio(), 100 * e.retention(), e.speedup());
  }
  if (done > 0 && done < budget && job.state() == v1::SEARCHING) {
    double eta = elapsed_seconds / done * (budget - done);
    absl::StrAppendFormat(&out, "  ETA %ds", static_cast<int>(eta + 0.5));
  }
  if (!job.waiting().empty()) absl::StrAppend(&out, "  (", job.waiting(), ")");
  return out;
}

std::string FormatJobStatus(const v1::Job& job) {
  std::string out = absl::StrFormat(
      "job %s: %s\n  task %s, search %s, runtime %s, budget %d, target size %.2f, min retention %.2f\n", job.id(),
      JobStateName(job.state()), job.spec().task().name(), job.spec().search(), RuntimeOrDefault(job.spec().runtime()),
      job.spec().budget(), job.spec().goal().target_size(), job.spec().goal().min_retention());
  if (!job.waiting().empty()) absl::StrAppend(&out, "  ", job.waiting(), "\n");
  absl::StrAppendFormat(&out, "  evaluated %d (failed %d), in flight %d\n", job.evaluated(), job.failed(),
                        job.in_flight());
  if (job.best().outcome() == "ok") {
    const v1::Evaluation& e = job.best().evaluation();
    absl::StrAppendFormat(&out, "  best (validation): reward %.3f, size %.1f%%, retention %.1f%%, speedup %.2fx\n    %s\n",
                          job.best().reward(), 100 * e.size_ratio(), 100 * e.retention(), e.speedup(),
                          PolicySummary(job.best().policy()));
  }
  if (job.state() == v1::SUCCEEDED) {
    const v1::Evaluation& e = job.final_evaluation();
    absl::StrAppendFormat(&out, "  final (test): size %.1f%%, retention %.1f%%, speedup %.2fx, goal %s\n",
                          100 * e.size_ratio(), 100 * e.retention(), e.speedup(),
                          job.goal_met() ? "met" : "missed");
  }
  if (!job.error().empty()) absl::StrAppend(&out, "  error: ", job.error(), "\n");
  return out;
}

}  // namespace shrink::client
