#include "client/remote/report_html.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "client/remote/report.h"
#include "common/api_names.h"
#include "common/policy.h"

namespace shrink::client {
namespace {

std::string Escape(const std::string& text) {
  return absl::StrReplaceAll(text, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
}

// Plot geometry shared by the charts: an SVG of kWidth x kHeight with margins.
constexpr double kWidth = 640, kHeight = 320, kLeft = 60, kRight = 20, kTop = 20, kBottom = 45;

// A linear map from a data range to pixels.
struct Axis {
  double lo, hi, from, to;
  double operator()(double v) const { return hi == lo ? (from + to) / 2 : from + (v - lo) / (hi - lo) * (to - from); }
};

// Pads [lo, hi] by 5% (or by 0.5 when it is a single value).
void Pad(double* lo, double* hi) {
  double span = *hi - *lo;
  double pad = span > 0 ? span * 0.05 : 0.5;
  *lo -= pad;
  *hi += pad;
}

// Axes, ticks (with `x_decimals` / `y_decimals` digits) and labels of a plot.
std::string Frame(const Axis& x, const Axis& y, const std::string& x_label, const std::string& y_label,
                  int x_decimals, int y_decimals) {
  std::string out = absl::StrFormat(
      "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" class=\"frame\"/>\n", kLeft, kTop,
      kWidth - kLeft - kRight, kHeight - kTop - kBottom);
  for (int i = 0; i <= 4; ++i) {
    double xv = x.lo + (x.hi - x.lo) * i / 4, yv = y.lo + (y.hi - y.lo) * i / 4;
    absl::StrAppendFormat(&out, "<text x=\"%g\" y=\"%g\" class=\"tick\" text-anchor=\"middle\">%.*f</text>\n", x(xv),
                          kHeight - kBottom + 16, x_decimals, xv);
    absl::StrAppendFormat(&out, "<text x=\"%g\" y=\"%g\" class=\"tick\" text-anchor=\"end\">%.*f</text>\n", kLeft - 6,
                          y(yv) + 4, y_decimals, yv);
  }
  absl::StrAppendFormat(&out, "<text x=\"%g\" y=\"%g\" class=\"label\" text-anchor=\"middle\">%s</text>\n",
                        (kLeft + kWidth - kRight) / 2, kHeight - 8, Escape(x_label));
  absl::StrAppendFormat(&out,
                        "<text x=\"14\" y=\"%g\" class=\"label\" text-anchor=\"middle\" "
                        "transform=\"rotate(-90 14 %g)\">%s</text>\n",
                        (kTop + kHeight - kBottom) / 2, (kTop + kHeight - kBottom) / 2, Escape(y_label));
  return out;
}

std::string OpenSvg(const std::string& id, const std::string& title) {
  return absl::StrFormat(
      "<svg id=\"%s\" class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
      "viewBox=\"0 0 %g %g\" role=\"img\"><title>%s</title>\n",
      id, kWidth, kHeight, kWidth, kHeight, Escape(title));
}

std::vector<const v1::CandidateSummary*> Succeeded(const std::vector<v1::CandidateSummary>& candidates) {
  std::vector<const v1::CandidateSummary*> ok;
  for (const auto& c : candidates) {
    if (c.outcome() == "ok") ok.push_back(&c);
  }
  return ok;
}

// Reward of each evaluation in order, and the best so far as a step line.
std::string RewardPlot(const std::vector<v1::CandidateSummary>& candidates) {
  auto ok = Succeeded(candidates);
  std::string svg = OpenSvg("reward-plot", "Reward per evaluation");
  if (ok.empty()) return svg + "<text x=\"320\" y=\"160\" text-anchor=\"middle\">no successful evaluation</text></svg>\n";
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (auto* c : ok) {
    lo = std::min(lo, c->reward());
    hi = std::max(hi, c->reward());
  }
  Pad(&lo, &hi);
  // A multiple of 4 evaluations wide, so the 5 ticks fall on whole evaluations.
  double x_hi = 4 * std::ceil((static_cast<double>(candidates.size()) + 1) / 4);
  Axis x{0, x_hi, kLeft, kWidth - kRight};
  Axis y{lo, hi, kHeight - kBottom, kTop};
  svg += Frame(x, y, "evaluation", "reward", 0, 2);
  std::string best_path;
  double best = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < candidates.size(); ++i) {
    const auto& c = candidates[i];
    double xi = x(static_cast<double>(i + 1));
    if (c.outcome() != "ok") {
      absl::StrAppendFormat(&svg, "<text x=\"%g\" y=\"%g\" class=\"failed\" text-anchor=\"middle\">&#215;<title>candidate %d failed: %s</title></text>\n",
                            xi, kHeight - kBottom - 4, c.id(), Escape(c.error()));
      continue;
    }
    if (c.reward() > best) {
      best = c.reward();
      absl::StrAppendFormat(&best_path, "%s%g,%g ", best_path.empty() ? "M" : "L", xi, y(best));
    } else {
      absl::StrAppendFormat(&best_path, "L%g,%g ", xi, y(best));
    }
    absl::StrAppendFormat(&svg,
                          "<circle class=\"point%s\" cx=\"%g\" cy=\"%g\" r=\"4\"><title>candidate %d: reward %.4f</title></circle>\n",
                          c.feasible() ? "" : " infeasible", xi, y(c.reward()), c.id(), c.reward());
  }
  absl::StrAppendFormat(&svg, "<path class=\"best\" d=\"%s\"/>\n", best_path);
  return svg + "</svg>\n";
}

// Size ratio vs retention of every successful candidate, the Pareto front and the goal.
std::string ParetoPlot(const v1::Job& job, const std::vector<v1::CandidateSummary>& candidates) {
  auto ok = Succeeded(candidates);
  std::string svg = OpenSvg("pareto-plot", "Size vs retention");
  if (ok.empty()) return svg + "<text x=\"320\" y=\"160\" text-anchor=\"middle\">no successful evaluation</text></svg>\n";
  const v1::Goal& goal = job.spec().goal();
  double xlo = goal.target_size(), xhi = goal.target_size(), ylo = goal.min_retention(), yhi = goal.min_retention();
  for (auto* c : ok) {
    xlo = std::min(xlo, c->evaluation().size_ratio());
    xhi = std::max(xhi, c->evaluation().size_ratio());
    ylo = std::min(ylo, c->evaluation().retention());
    yhi = std::max(yhi, c->evaluation().retention());
  }
  Pad(&xlo, &xhi);
  Pad(&ylo, &yhi);
  Axis x{xlo, xhi, kLeft, kWidth - kRight};
  Axis y{ylo, yhi, kHeight - kBottom, kTop};
  svg += Frame(x, y, "size ratio (bytes / baseline bytes)", "accuracy retention", 2, 2);
  // The feasible region: size at most the target, retention at least the minimum.
  absl::StrAppendFormat(&svg, "<rect class=\"goal\" x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\"><title>goal: size &#8804; %.2f, retention &#8805; %.2f</title></rect>\n",
                        kLeft, kTop, std::max(0.0, x(goal.target_size()) - kLeft),
                        std::max(0.0, y(goal.min_retention()) - kTop), goal.target_size(), goal.min_retention());
  for (auto* c : ok) {
    absl::StrAppendFormat(&svg,
                          "<circle class=\"point%s\" cx=\"%g\" cy=\"%g\" r=\"4\"><title>candidate %d: size %.1f%%, retention %.1f%%, reward %.3f</title></circle>\n",
                          c->id() == job.best().id() ? " best" : "", x(c->evaluation().size_ratio()),
                          y(c->evaluation().retention()), c->id(), 100 * c->evaluation().size_ratio(),
                          100 * c->evaluation().retention(), c->reward());
  }
  std::string front_path;
  for (const auto& p : ParetoFront(candidates)) {
    absl::StrAppendFormat(&front_path, "%s%g,%g ", front_path.empty() ? "M" : "L", x(p.size_ratio), y(p.retention));
    absl::StrAppendFormat(&svg, "<circle class=\"front\" cx=\"%g\" cy=\"%g\" r=\"6\"><title>Pareto: candidate %d</title></circle>\n",
                          x(p.size_ratio), y(p.retention), p.candidate_id);
  }
  absl::StrAppendFormat(&svg, "<path class=\"front-line\" d=\"%s\"/>\n", front_path);
  return svg + "</svg>\n";
}

// Prune ratio (bars, left) and bit width (bars, right) of each layer of the best policy.
std::string LayersPlot(const v1::Job& job) {
  std::string svg = OpenSvg("layers-plot", "Best policy per layer");
  std::vector<v1::LayerAction> layers(job.best().policy().layers().begin(), job.best().policy().layers().end());
  if (layers.empty() && job.best().policy().has_uniform()) {
    for (const auto& info : job.description().layers()) {
      v1::LayerAction action = job.best().policy().uniform();
      action.set_name(info.name());
      layers.push_back(action);
    }
  }
  if (layers.empty()) return svg + "<text x=\"320\" y=\"160\" text-anchor=\"middle\">no policy yet</text></svg>\n";
  Axis y_prune{0, 1, kHeight - kBottom, kTop};
  const double inner = kWidth - kLeft - kRight;
  const double slot = inner / static_cast<double>(layers.size());
  const double bar = std::min(40.0, slot * 0.35);
  svg += absl::StrFormat("<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" class=\"frame\"/>\n", kLeft, kTop, inner,
                         kHeight - kTop - kBottom);
  for (int i = 0; i <= 4; ++i) {
    double v = i / 4.0;
    absl::StrAppendFormat(&svg, "<text x=\"%g\" y=\"%g\" class=\"tick\" text-anchor=\"end\">%.0f%%</text>\n", kLeft - 6,
                          y_prune(v) + 4, 100 * v);
    absl::StrAppendFormat(&svg, "<text x=\"%g\" y=\"%g\" class=\"tick\" text-anchor=\"start\">%.0f</text>\n",
                          kWidth - kRight + 4, y_prune(v) + 4, 32 * v);
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& layer = layers[i];
    double cx = kLeft + slot * (static_cast<double>(i) + 0.5);
    double prune_top = y_prune(layer.prune()), bits_top = y_prune(layer.bits() / 32.0);
    absl::StrAppendFormat(&svg, "<rect class=\"bar-prune\" x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\"><title>%s: prune %.0f%%</title></rect>\n",
                          cx - bar, prune_top, bar, kHeight - kBottom - prune_top, Escape(layer.name()),
                          100 * layer.prune());
    absl::StrAppendFormat(&svg, "<rect class=\"bar-bits\" x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\"><title>%s: %d bits</title></rect>\n",
                          cx, bits_top, bar, kHeight - kBottom - bits_top, Escape(layer.name()), layer.bits());
    absl::StrAppendFormat(&svg, "<text x=\"%g\" y=\"%g\" class=\"tick\" text-anchor=\"middle\">%s</text>\n", cx,
                          kHeight - kBottom + 16, Escape(layer.name()));
  }
  absl::StrAppendFormat(&svg, "<text x=\"14\" y=\"%g\" class=\"label prune\" text-anchor=\"middle\" transform=\"rotate(-90 14 %g)\">prune ratio</text>\n",
                        (kTop + kHeight - kBottom) / 2, (kTop + kHeight - kBottom) / 2);
  return svg + "</svg>\n";
}

std::string MetricsRow(const std::string& name, const v1::Evaluation& e, bool baseline) {
  const v1::Metrics& m = baseline ? e.baseline() : e.candidate();
  return absl::StrFormat("<tr><th>%s</th><td>%d</td><td>%.1f%%</td><td>%.2f%%</td><td>%.1f%%</td><td>%.3f</td><td>%.2fx</td></tr>\n",
                         Escape(name), m.bytes(), baseline ? 100.0 : 100 * e.size_ratio(), 100 * m.accuracy(),
                         baseline ? 100.0 : 100 * e.retention(), m.latency_ms(), baseline ? 1.0 : e.speedup());
}

constexpr char kStyle[] = R"(
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1000px; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f4f4f4; }
svg.plot { display: block; margin: 1em 0; background: #fff; }
.frame { fill: none; stroke: #888; }
.tick { font-size: 11px; fill: #555; }
.label { font-size: 12px; fill: #222; }
circle.point { fill: #1f77b4; fill-opacity: 0.75; }
circle.point.infeasible { fill: #aaa; }
circle.point.best { fill: #d62728; }
circle.front { fill: none; stroke: #ff7f0e; stroke-width: 2; }
path.best { fill: none; stroke: #d62728; stroke-width: 2; }
path.front-line { fill: none; stroke: #ff7f0e; stroke-width: 2; stroke-dasharray: 5 3; }
rect.goal { fill: #2ca02c; fill-opacity: 0.08; stroke: #2ca02c; stroke-dasharray: 4 3; }
rect.bar-prune { fill: #1f77b4; }
rect.bar-bits { fill: #9467bd; }
.failed { fill: #d62728; font-size: 14px; }
)";

}  // namespace

std::vector<ParetoPoint> ParetoFront(const std::vector<v1::CandidateSummary>& candidates) {
  std::vector<ParetoPoint> points;
  for (const auto& c : candidates) {
    if (c.outcome() == "ok") points.push_back({c.evaluation().size_ratio(), c.evaluation().retention(), c.id()});
  }
  // Smallest first; among equal sizes the best retention first. A point is on the
  // front when its retention beats every smaller one's.
  std::sort(points.begin(), points.end(), [](const ParetoPoint& a, const ParetoPoint& b) {
    return a.size_ratio != b.size_ratio ? a.size_ratio < b.size_ratio : a.retention > b.retention;
  });
  std::vector<ParetoPoint> front;
  double best_retention = -std::numeric_limits<double>::infinity();
  for (const auto& p : points) {
    if (p.retention > best_retention) {
      front.push_back(p);
      best_retention = p.retention;
    }
  }
  return front;
}

std::string FormatHtmlReport(const v1::Job& job, const std::vector<v1::CandidateSummary>& candidates) {
  std::string title = absl::StrCat("Shrink report: ", job.id());
  std::string out = absl::StrCat("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>", Escape(title),
                                 "</title><style>", kStyle, "</style></head><body>\n<h1>", Escape(title), "</h1>\n");
  const v1::JobSpec& spec = job.spec();
  absl::StrAppendFormat(&out,
                        "<p>State <b>%s</b>. Task %s, search %s, budget %d, evaluated %d (failed %d). Goal: size "
                        "&#8804; %.0f%% of the model's bytes, retention &#8805; %.0f%%.</p>\n",
                        JobStateName(job.state()), Escape(spec.task().name()), Escape(spec.search()), spec.budget(),
                        job.evaluated(), job.failed(), 100 * spec.goal().target_size(), 100 * spec.goal().min_retention());
  out += "<table><tr><th></th><th>bytes</th><th>size</th><th>accuracy</th><th>retention</th><th>latency ms</th><th>speedup</th></tr>\n";
  if (job.best().outcome() == "ok") {
    out += MetricsRow("baseline", job.best().evaluation(), true);
    out += MetricsRow("best candidate (validation)", job.best().evaluation(), false);
  }
  if (job.state() == v1::SUCCEEDED) out += MetricsRow("final model (test)", job.final_evaluation(), false);
  out += "</table>\n";
  if (job.best().outcome() == "ok") {
    absl::StrAppendFormat(&out, "<p>Best policy (reward %.3f, goal %s): <code>%s</code></p>\n", job.best().reward(),
                          job.best().feasible() ? "met" : "missed", Escape(PolicySummary(job.best().policy())));
  }
  out += "<h2>Reward per evaluation</h2>\n<p>Dots: each candidate's reward (grey = misses the goal); line: best so far; &#215;: failed.</p>\n";
  out += RewardPlot(candidates);
  out += "<h2>Size vs retention</h2>\n<p>Every evaluated candidate; orange: the Pareto front; green box: the goal; red: the best.</p>\n";
  out += ParetoPlot(job, candidates);
  out += "<h2>Best policy per layer</h2>\n<p>Blue: prune ratio (left axis); purple: bit width (right axis).</p>\n";
  out += LayersPlot(job);
  out += "<h2>Candidates</h2>\n<table><tr><th>#</th><th>outcome</th><th>reward</th><th>size</th><th>retention</th><th>speedup</th><th>worker</th><th>seconds</th></tr>\n";
  for (const auto& c : candidates) {
    if (c.outcome() == "ok") {
      absl::StrAppendFormat(&out, "<tr><td>%d</td><td>ok%s</td><td>%.3f</td><td>%.1f%%</td><td>%.1f%%</td><td>%.2fx</td><td>%s</td><td>%.2f</td></tr>\n",
                            c.id(), c.feasible() ? "" : " (misses goal)", c.reward(), 100 * c.evaluation().size_ratio(),
                            100 * c.evaluation().retention(), c.evaluation().speedup(), Escape(c.worker()), c.seconds());
    } else {
      absl::StrAppendFormat(&out, "<tr><td>%d</td><td colspan=\"5\">failed: %s</td><td>%s</td><td>%.2f</td></tr>\n", c.id(),
                            Escape(c.error()), Escape(c.worker()), c.seconds());
    }
  }
  out += "</table>\n</body></html>\n";
  return out;
}

}  // namespace shrink::client
