// deploy/local/shrink-local.sh as a user runs it: it starts a coordinator, two workers
// and Prometheus, a job runs on them, Prometheus scrapes all three, and SIGTERM stops
// every process it started.
#include <signal.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <httplib.h>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/files.h"
#include "tests/test_util/subprocess.h"
#include "tests/test_util/tiny_model.h"

namespace shrink {
namespace {

using testing::BinPath;
using testing::RunCommand;
using testing::Subprocess;

TEST(LocalLauncherTest, StartsRunsAJobScrapesAndStopsCleanly) {
  std::string dir = *MakeTempDir("shrink-local-test-");
  std::string model = testing::TinyTrainedModel();
  std::vector<std::string> pids;
  {
    Subprocess launcher({"/bin/bash", std::string(SHRINK_SOURCE_DIR) + "/deploy/local/shrink-local.sh", "--workers", "2",
                         "--threads", "1", "--grpc-port", "0", "--prometheus-port", "0", "--dir", dir + "/run",
                         "--bin", SHRINK_BIN_DIR});
    auto ready = launcher.WaitForReadyLine("shrink-local ready");
    std::string grpc = ready["grpc"], prometheus = ready["prometheus"];
    ASSERT_FALSE(grpc.empty());
    ASSERT_EQ(prometheus.rfind("http://127.0.0.1:", 0), 0u) << prometheus;

    EXPECT_EQ(RunCommand({BinPath("shrink"), "health", "--coordinator", grpc}).exit_code, 0);
    std::ofstream(dir + "/job.yaml") << "model: " << model << "\ntask: fashion-mnist\ntarget_size: 0.3\n"
                                     << "min_retention: 0.5\nbudget: 2\nsearch: uniform\n";
    auto submitted = RunCommand({BinPath("shrink"), "submit", dir + "/job.yaml", "--coordinator", grpc});
    ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
    std::string id = submitted.out.substr(0, submitted.out.find('\n'));
    auto watched = RunCommand({BinPath("shrink"), "watch", id, "--coordinator", grpc});
    EXPECT_EQ(watched.exit_code, 0) << watched.out << watched.err;

    // The launcher's Prometheus scrapes the coordinator and both workers.
    httplib::Client client(prometheus);
    for (int poll = 0;; ++poll) {
      auto response = client.Get("/api/v1/query", httplib::Params{{"query", "sum(up)"}}, httplib::Headers{});
      if (response && response->status == 200) {
        auto result = nlohmann::json::parse(response->body)["data"]["result"];
        if (!result.empty() && result[0]["value"][1] == "3") break;
      }
      ASSERT_LT(poll, 300) << "Prometheus never saw the three targets up";
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // polling a condition
    }

    std::ifstream env(dir + "/run/env");
    std::stringstream text;
    text << env.rdbuf();
    for (absl::string_view line : absl::StrSplit(text.str(), '\n')) {
      if (absl::ConsumePrefix(&line, "SHRINK_PIDS=\"")) {
        line.remove_suffix(1);
        pids = absl::StrSplit(line, ' ');
      }
    }
    ASSERT_EQ(pids.size(), 4u) << text.str();  // coordinator, 2 workers, prometheus

    launcher.Kill(SIGTERM);
    EXPECT_EQ(launcher.Wait(), 0);
  }
  for (const auto& pid : pids) {
    EXPECT_NE(kill(std::stoi(pid), 0), 0) << "process " << pid << " outlived the launcher";
  }
  RemoveAll(dir);
}

}  // namespace
}  // namespace shrink
