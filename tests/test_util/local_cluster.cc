#include "tests/test_util/local_cluster.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "common/files.h"
#include "tests/test_util/tiny_model.h"

namespace shrink::testing {
namespace {

int PortOf(const std::string& host_port) { return std::stoi(host_port.substr(host_port.rfind(':') + 1)); }

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

LocalCluster::LocalCluster(const std::string& dir, int workers) : dir_(dir) {
  coordinator_ = std::make_unique<Subprocess>(std::vector<std::string>{
      BinPath("shrink-coordinator"), "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--state",
      dir_ + "/state"});
  auto ready = coordinator_->WaitForReadyLine("shrink-coordinator ready");
  address_ = ready["grpc"];
  coordinator_metrics_port_ = PortOf(ready["metrics"]);
  for (int i = 0; i < workers; ++i) {
    workers_.push_back(std::make_unique<Subprocess>(std::vector<std::string>{
        BinPath("shrink-worker"), "--coordinator", address_, "--metrics", "127.0.0.1:0", "--slots", "1",
        "--threads", "1", "--cache", dir_ + "/worker" + std::to_string(i)}));
    worker_metrics_ports_.push_back(PortOf(workers_.back()->WaitForReadyLine("shrink-worker ready")["metrics"]));
  }
}

CommandResult LocalCluster::Shrink(std::vector<std::string> args) const {
  args.insert(args.begin(), BinPath("shrink"));
  args.push_back("--coordinator");
  args.push_back(address_);
  return RunCommand(args);
}

std::string LocalCluster::WriteJobFile(int budget, const std::string& search) const {
  std::string path = dir_ + "/job.yaml";
  std::ofstream(path) << "model: " << TinyTrainedModel() << "\ntask: fashion-mnist\n"
                      << "target_size: 0.25\nmin_retention: 0.5\n"
                      << "budget: " << budget << "\nsearch: " << search << "\nseed: 7\n";
  return path;
}

PrometheusServer::PrometheusServer(const std::string& dir, int coordinator_port,
                                   const std::vector<int>& worker_ports) {
  const std::string shipped = std::string(SHRINK_SOURCE_DIR) + "/deploy/prometheus";
  // The shipped files, with the intervals a test can wait for.
  std::string config = std::regex_replace(ReadAll(shipped + "/prometheus.yml"),
                                          std::regex("(scrape_interval|evaluation_interval|refresh_interval): \\w+"),
                                          "$1: 1s");
  EXPECT_TRUE(MakeDirs(dir + "/targets").ok());
  EXPECT_TRUE(WriteFileAtomic(dir + "/prometheus.yml", config).ok());
  EXPECT_TRUE(WriteFileAtomic(dir + "/shrink-alerts.yml", ReadAll(shipped + "/shrink-alerts.yml")).ok());
  std::string workers;
  for (int port : worker_ports) workers += (workers.empty() ? "\"" : ", \"") + std::string("127.0.0.1:") + std::to_string(port) + "\"";
  EXPECT_TRUE(WriteFileAtomic(dir + "/targets/coordinator.json",
                              "[{\"targets\": [\"127.0.0.1:" + std::to_string(coordinator_port) + "\"]}]\n")
                  .ok());
  EXPECT_TRUE(WriteFileAtomic(dir + "/targets/workers.json", "[{\"targets\": [" + workers + "]}]\n").ok());
  process_ = std::make_unique<Subprocess>(std::vector<std::string>{
      "/bin/sh", "-c",
      "exec prometheus --config.file=" + dir + "/prometheus.yml --storage.tsdb.path=" + dir +
          "/tsdb --web.listen-address=127.0.0.1:0 2>&1"});
  std::string listening = process_->WaitForLineContaining("msg=\"Listening on\"");
  if (listening.empty()) return;  // WaitForLineContaining has failed the test
  port_ = PortOf(listening);
  const std::string expected = std::to_string(1 + worker_ports.size());
  for (int poll = 0;; ++poll) {
    auto up = Api("query", {{"query", "sum(up)"}});
    if (up["status"] == "success" && !up["data"]["result"].empty() &&
        up["data"]["result"][0]["value"][1] == expected) {
      break;
    }
    if (poll >= 300) {
      ADD_FAILURE() << "Prometheus never saw all " << expected << " targets up";
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // polling a condition, not a sync point
  }
}

nlohmann::json PrometheusServer::Api(const std::string& path,
                                     const std::vector<std::pair<std::string, std::string>>& params) const {
  httplib::Client client("127.0.0.1", port_);
  httplib::Params query(params.begin(), params.end());
  auto response = client.Get("/api/v1/" + path, query, httplib::Headers{});
  if (!response) return {{"status", "error"}, {"error", "no answer from Prometheus"}};
  auto body = nlohmann::json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return {{"status", "error"}, {"error", response->body}};
  return body;
}

}  // namespace shrink::testing
