// The shipped Grafana dashboards and alert rules against a real run: Debian's
// Prometheus, configured from deploy/prometheus, scrapes a real coordinator and two
// workers running a job; every PromQL expression of every dashboard panel must
// answer with data, and every alert rule must evaluate without error.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <fstream>
#include <set>
#include <thread>

#include "absl/strings/str_replace.h"
#include "common/files.h"
#include "tests/test_util/local_cluster.h"

namespace shrink {
namespace {

using testing::HttpGet;
using testing::LocalCluster;
using testing::PrometheusServer;
using testing::RunCommand;

struct PanelQuery {
  std::string where;  // "file: panel title [refId]"
  std::string expr;
};

// Every target expression of every panel (rows' nested panels included).
void CollectQueries(const nlohmann::json& panels, const std::string& file, std::vector<PanelQuery>* out) {
  for (const auto& panel : panels) {
    if (panel.contains("panels")) CollectQueries(panel["panels"], file, out);
    if (!panel.contains("targets")) continue;
    for (const auto& target : panel["targets"]) {
      if (!target.contains("expr")) continue;
      out->push_back({file + ": " + panel.value("title", "?") + " [" + target.value("refId", "?") + "]",
                      target["expr"].get<std::string>()});
    }
  }
}

std::vector<PanelQuery> DashboardQueries() {
  std::vector<PanelQuery> queries;
  for (const char* name : {"shrink-overview.json", "shrink-job.json"}) {
    std::ifstream in(std::string(SHRINK_SOURCE_DIR) + "/deploy/grafana/" + name);
    nlohmann::json dashboard = nlohmann::json::parse(in);
    CollectQueries(dashboard["panels"], name, &queries);
  }
  return queries;
}

// True when a query_range answer has at least one series with a number in it
// (a panel of NaN draws nothing either).
bool HasData(const nlohmann::json& answer) {
  for (const auto& series : answer["data"]["result"]) {
    for (const auto& point : series["values"]) {
      double v = std::stod(point[1].get<std::string>());
      if (!std::isnan(v)) return true;
    }
  }
  return false;
}

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

TEST(DashboardsTest, EveryPanelQueryReturnsDataFromARealRun) {
  std::string dir = *MakeTempDir("shrink-dashboards-");
  auto queries = DashboardQueries();
  ASSERT_GE(queries.size(), 20u);
  {
    LocalCluster cluster(dir, 2);
    PrometheusServer prometheus(dir + "/prometheus", cluster.coordinator_metrics_port(),
                                cluster.worker_metrics_ports());
    double start = NowSeconds() - 5;
    // A budget far beyond what the test waits for: the job is running (so its
    // per-job series exist) until the test has its answers, then it is cancelled.
    auto submitted = cluster.Shrink({"submit", cluster.WriteJobFile(500, "random")});
    ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
    std::string id = submitted.out.substr(0, submitted.out.find('\n'));

    std::set<std::string> pending;
    for (const auto& q : queries) pending.insert(q.where);
    bool linted = false;
    for (int round = 0; !pending.empty(); ++round) {
      ASSERT_LT(round, 240) << pending.size() << " panel queries still have no data, e.g. " << *pending.begin();
      double now = NowSeconds();
      for (const auto& q : queries) {
        if (!pending.count(q.where)) continue;
        // Grafana's template variables, as it would expand them for this view.
        std::string expr = absl::StrReplaceAll(
            q.expr, {{"$__rate_interval", "10s"}, {"$__range", std::to_string(static_cast<int>(now - start)) + "s"},
                     {"$__interval", "1s"}, {"$job_id", id}});
        auto answer = prometheus.Api("query_range", {{"query", expr},
                                                     {"start", std::to_string(start)},
                                                     {"end", std::to_string(now)},
                                                     {"step", "1"}});
        ASSERT_EQ(answer["status"], "success") << q.where << "\n" << expr << "\n" << answer.dump();
        if (HasData(answer)) pending.erase(q.where);
      }
      // While the per-job series exist, Prometheus's linter reads the real scrape.
      if (!linted && pending.size() < queries.size()) {
        std::string scrape = HttpGet("127.0.0.1", cluster.coordinator_metrics_port(), "/metrics");
        if (scrape.find("shrink_job_candidate_size_ratio{") != std::string::npos) {
          ASSERT_TRUE(WriteFileAtomic(dir + "/scrape.txt", scrape).ok());
          auto checked = RunCommand({"/bin/sh", "-c", "promtool check metrics < " + dir + "/scrape.txt"});
          EXPECT_EQ(checked.exit_code, 0) << checked.out << checked.err;
          linted = true;
        }
      }
      if (!pending.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(500));  // next scrape
    }
    EXPECT_TRUE(linted) << "never saw the per-job series in a scrape";

    // The alert rules loaded from deploy/prometheus evaluate cleanly on real series.
    auto rules = prometheus.Api("rules", {});
    ASSERT_EQ(rules["status"], "success") << rules.dump();
    std::set<std::string> names;
    for (const auto& group : rules["data"]["groups"]) {
      for (const auto& rule : group["rules"]) {
        names.insert(rule["name"].get<std::string>());
        EXPECT_EQ(rule["health"], "ok") << rule.dump();
      }
    }
    EXPECT_EQ(names, (std::set<std::string>{"ShrinkCoordinatorDown", "ShrinkNoWorkerConnected", "ShrinkJobNoProgress",
                                            "ShrinkCandidateFailureRateHigh"}));
    EXPECT_EQ(cluster.Shrink({"cancel", id}).exit_code, 0);
  }
  RemoveAll(dir);
}

}  // namespace
}  // namespace shrink
