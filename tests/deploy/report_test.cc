// `shrink report`: the HTML page's plots, checked by rendering them in headless
// Chromium (Debian's chromium) after a real job on a real coordinator and workers.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <regex>
#include <sstream>

#include "client/remote/report.h"
#include "client/remote/report_html.h"
#include "common/files.h"
#include "tests/test_util/local_cluster.h"

namespace shrink {
namespace {

using testing::LocalCluster;
using testing::RunCommand;

v1::CandidateSummary Candidate(int64_t id, double size, double retention, const std::string& outcome = "ok") {
  v1::CandidateSummary c;
  c.set_id(id);
  c.set_outcome(outcome);
  c.mutable_evaluation()->set_size_ratio(size);
  c.mutable_evaluation()->set_retention(retention);
  return c;
}

TEST(ReportTest, ParetoFrontKeepsOnlyUnbeatenCandidates) {
  std::vector<v1::CandidateSummary> candidates = {
      Candidate(1, 0.5, 0.99), Candidate(2, 0.2, 0.90), Candidate(3, 0.3, 0.85),  // 3 is beaten by 2
      Candidate(4, 0.1, 0.70), Candidate(5, 0.2, 0.95), Candidate(6, 0.05, 0.99, "failed")};
  auto front = client::ParetoFront(candidates);
  std::vector<int64_t> ids;
  for (const auto& p : front) ids.push_back(p.candidate_id);
  EXPECT_EQ(ids, (std::vector<int64_t>{4, 5, 1}));
}

TEST(ReportTest, ResultTableShowsTheLatencyPairEachSpeedupComesFrom) {
  // Two rows timed in different tasks: their baselines differ, as they do on a busy machine.
  auto row = [](const std::string& method, double base_ms, double ms) {
    client::ResultRow r{method, {}, true};
    r.evaluation.mutable_baseline()->set_latency_ms(base_ms);
    r.evaluation.mutable_candidate()->set_latency_ms(ms);
    r.evaluation.set_speedup(base_ms / ms);
    return r;
  };
  const std::string table = client::FormatResultTable({row("uniform", 10.071, 4.027), row("random", 10.0, 3.077)});
  // Columns: method, size %, speedup x, retention %, accuracy, baseline ms, "->", this ms, goal.
  std::istringstream lines(table);
  std::string text;
  int rows = 0;
  while (std::getline(lines, text)) {
    std::istringstream fields(text);
    std::string method, size, speedup, retention, accuracy, base, arrow, ms;
    fields >> method >> size >> speedup >> retention >> accuracy >> base >> arrow >> ms;
    if (method != "uniform" && method != "random") continue;
    ++rows;
    ASSERT_EQ(arrow, "->") << table;
    EXPECT_NEAR(std::stod(speedup), std::stod(base) / std::stod(ms), 0.01) << table;  // the row agrees with itself
  }
  EXPECT_EQ(rows, 2) << table;
  EXPECT_NE(table.find("10.071 -> 4.027"), std::string::npos) << table;
  EXPECT_NE(table.find("10.000 -> 3.077"), std::string::npos) << table;
}

TEST(ReportTest, ProgressLineShowsBudgetBestAndEta) {
  v1::Job job;
  job.mutable_spec()->set_budget(16);
  job.set_evaluated(4);
  job.set_state(v1::SEARCHING);
  job.mutable_best()->set_outcome("ok");
  job.mutable_best()->set_reward(1.234);
  job.mutable_best()->mutable_evaluation()->set_size_ratio(0.2);
  job.mutable_best()->mutable_evaluation()->set_retention(0.975);
  std::string line = client::FormatProgress(job, 8.0);
  EXPECT_NE(line.find("4/16 evaluated"), std::string::npos) << line;
  EXPECT_NE(line.find("reward 1.234"), std::string::npos) << line;
  EXPECT_NE(line.find("size 20.0%"), std::string::npos) << line;
  EXPECT_NE(line.find("retention 97.5%"), std::string::npos) << line;
  EXPECT_NE(line.find("ETA 24s"), std::string::npos) << line;  // 2 s per evaluation, 12 to go
}

TEST(ReportTest, HtmlEscapesWhatUsersControl) {
  v1::Job job;
  job.set_id("job-x");
  job.mutable_spec()->mutable_task()->set_name("<script>alert(1)</script>");
  auto failed = Candidate(1, 0, 0, "failed");
  failed.set_error("bad <tensor> & more");
  std::string html = client::FormatHtmlReport(job, {failed});
  EXPECT_EQ(html.find("<script>alert"), std::string::npos);
  EXPECT_NE(html.find("bad &lt;tensor&gt; &amp; more"), std::string::npos);
}

// Loads the report in an iframe and measures what Chromium laid out.
constexpr char kCheckPage[] = R"(<!DOCTYPE html><html><body>
<pre id="result">pending</pre>
<iframe id="report" src="report.html" width="1100" height="3000"></iframe>
<script>
document.getElementById('report').addEventListener('load', () => {
  const doc = document.getElementById('report').contentDocument;
  const out = {};
  for (const id of ['reward-plot', 'pareto-plot', 'layers-plot']) {
    const svg = doc.getElementById(id);
    if (!svg) { out[id] = null; continue; }
    const box = svg.getBoundingClientRect();
    const drawn = (sel) => [...svg.querySelectorAll(sel)].filter(e => { const b = e.getBBox(); return b.width > 0 && b.height > 0; }).length;
    out[id] = {width: box.width, height: box.height, isSvg: svg instanceof doc.defaultView.SVGSVGElement,
               points: drawn('circle.point'), front: drawn('circle.front'),
               prune: svg.querySelectorAll('rect.bar-prune').length, bits: drawn('rect.bar-bits'),
               paths: [...svg.querySelectorAll('path')].filter(p => p.getTotalLength() > 0).length};
  }
  out.scripts = doc.querySelectorAll('script').length;
  out.external = [...doc.querySelectorAll('[src],link[href]')].length;
  document.getElementById('result').textContent = JSON.stringify(out);
});
</script></body></html>)";

TEST(ReportTest, ChromiumRendersThePlotsOfARealJob) {
  std::string dir = *MakeTempDir("shrink-report-");
  {
    LocalCluster cluster(dir, 2);
    constexpr int kBudget = 6;
    auto submitted = cluster.Shrink({"submit", cluster.WriteJobFile(kBudget, "random")});
    ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
    std::string id = submitted.out.substr(0, submitted.out.find('\n'));
    auto watched = cluster.Shrink({"watch", id});
    ASSERT_EQ(watched.exit_code, 0) << watched.out << watched.err;
    EXPECT_NE(watched.err.find("/" + std::to_string(kBudget) + " evaluated"), std::string::npos) << watched.err;

    auto reported = cluster.Shrink({"report", id, "--out", dir + "/report.html"});
    ASSERT_EQ(reported.exit_code, 0) << reported.err;
    ASSERT_TRUE(WriteFileAtomic(dir + "/check.html", kCheckPage).ok());

    // Chromium refuses to run as root without --no-sandbox (this machine and CI run as root).
    auto rendered = RunCommand({"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
                                "--allow-file-access-from-files", "--user-data-dir=" + dir + "/chromium",
                                "--virtual-time-budget=10000", "--dump-dom", "file://" + dir + "/check.html"});
    ASSERT_EQ(rendered.exit_code, 0) << rendered.err;
    std::smatch match;
    ASSERT_TRUE(std::regex_search(rendered.out, match, std::regex("<pre id=\"result\">([^<]*)</pre>"))) << rendered.out;
    auto result = nlohmann::json::parse(match[1].str(), nullptr, false);
    ASSERT_FALSE(result.is_discarded()) << match[1];

    int ok = 0;
    auto job = nlohmann::json::parse(cluster.Shrink({"status", id, "--json"}).out);
    ok = job["evaluated"].get<int>();  // the tiny CNN's candidates all succeed
    for (const char* plot : {"reward-plot", "pareto-plot", "layers-plot"}) {
      ASSERT_TRUE(result[plot].is_object()) << plot << " missing: " << result.dump();
      EXPECT_TRUE(result[plot]["isSvg"].get<bool>()) << plot;
      EXPECT_GT(result[plot]["width"].get<double>(), 100) << plot;
      EXPECT_GT(result[plot]["height"].get<double>(), 100) << plot;
    }
    EXPECT_EQ(result["reward-plot"]["points"], ok);
    EXPECT_EQ(result["reward-plot"]["paths"], 1);  // the best-so-far line
    EXPECT_EQ(result["pareto-plot"]["points"], ok);
    EXPECT_GE(result["pareto-plot"]["front"].get<int>(), 1);
    EXPECT_EQ(result["layers-plot"]["prune"], 4);  // conv1, conv2, fc1, fc2
    EXPECT_EQ(result["layers-plot"]["bits"], 4);
    EXPECT_EQ(result["scripts"], 0);  // self-contained and static
    EXPECT_EQ(result["external"], 0);
  }
  RemoveAll(dir);
}

TEST(ReportTest, HealthCommandAnswersForCoordinatorAndWorker) {
  std::string dir = *MakeTempDir("shrink-health-");
  {
    LocalCluster cluster(dir, 1);
    auto coordinator = RunCommand({testing::BinPath("shrink"), "health", "--coordinator", cluster.address()});
    EXPECT_EQ(coordinator.exit_code, 0) << coordinator.err;
    EXPECT_EQ(coordinator.out, "SERVING\n");
    auto service = RunCommand({testing::BinPath("shrink"), "health", "--coordinator", cluster.address(), "--service",
                               "shrink.v1.Coordinator"});
    EXPECT_EQ(service.exit_code, 0) << service.err;
    auto worker = RunCommand({testing::BinPath("shrink"), "health", "--metrics",
                              "127.0.0.1:" + std::to_string(cluster.worker_metrics_ports()[0])});
    EXPECT_EQ(worker.exit_code, 0) << worker.err;
    auto unknown = RunCommand({testing::BinPath("shrink"), "health", "--coordinator", cluster.address(), "--service",
                               "no.such.Service"});
    EXPECT_EQ(unknown.exit_code, 1);
  }
  // Nothing listens there any more.
  auto down = RunCommand({testing::BinPath("shrink"), "health", "--coordinator", "127.0.0.1:1", "--timeout", "1"});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_FALSE(down.err.empty());
  RemoveAll(dir);
}

}  // namespace
}  // namespace shrink
