// A coordinator, N workers and (optionally) Debian's Prometheus as real processes
// on loopback, for tests of what operators see: dashboards, alerts, launchers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/test_util/subprocess.h"

namespace shrink::testing {

// shrink-coordinator + `workers` shrink-worker processes (1 slot, 1 thread each)
// with state and caches under `dir`; ports are 0 and read from the ready lines.
class LocalCluster {
 public:
  LocalCluster(const std::string& dir, int workers);

  // Runs the shrink client against this cluster (adds --coordinator).
  CommandResult Shrink(std::vector<std::string> args) const;
  // Writes a job file for the tiny test model and returns its path.
  std::string WriteJobFile(int budget, const std::string& search) const;

  const std::string& address() const { return address_; }
  int coordinator_metrics_port() const { return coordinator_metrics_port_; }
  const std::vector<int>& worker_metrics_ports() const { return worker_metrics_ports_; }

 private:
  std::string dir_;
  std::string address_;
  int coordinator_metrics_port_ = 0;
  std::vector<int> worker_metrics_ports_;
  std::unique_ptr<Subprocess> coordinator_;
  std::vector<std::unique_ptr<Subprocess>> workers_;
};

// Debian's prometheus running the shipped deploy/prometheus configuration (copied
// into `dir`, scrape and rule intervals shortened to 1 s) with file_sd targets for
// the given metrics ports. The constructor returns once every target is up.
class PrometheusServer {
 public:
  PrometheusServer(const std::string& dir, int coordinator_port, const std::vector<int>& worker_ports);

  // GET /api/v1/<path> with `params`; the parsed body (status, data or error), or
  // {"status": "error", "error": why} when there is no answer.
  nlohmann::json Api(const std::string& path, const std::vector<std::pair<std::string, std::string>>& params) const;
  int port() const { return port_; }

 private:
  std::unique_ptr<Subprocess> process_;
  int port_ = 0;
};

}  // namespace shrink::testing
