// End to end with real processes on loopback: one shrink-coordinator, two
// shrink-worker processes, and the shrink client binary, exactly as a user
// runs them. Ports are 0 and read back from each process's ready line.
#include <signal.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <httplib.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "common/files.h"
#include "tests/test_util/subprocess.h"
#include "tests/test_util/tiny_model.h"

namespace shrink {
namespace {

using testing::BinPath;
using testing::HttpGet;
using testing::MetricValue;
using testing::RunCommand;
using testing::Subprocess;

class ClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(*MakeTempDir("shrink-cluster-"));
    model_ = new std::string(testing::TinyTrainedModel());
  }
  static void TearDownTestSuite() {
    RemoveAll(*root_);
    delete root_;
    delete model_;
  }

  void SetUp() override {
    dir_ = *MakeTempDir("case-", *root_);
    coordinator_ = std::make_unique<Subprocess>(std::vector<std::string>{
        BinPath("shrink-coordinator"), "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
        "--state", dir_ + "/state"});
    auto ready = coordinator_->WaitForReadyLine("shrink-coordinator ready");
    address_ = ready["grpc"];
    coordinator_metrics_port_ = std::stoi(ready["metrics"].substr(ready["metrics"].rfind(':') + 1));
    for (int i = 0; i < 2; ++i) {
      workers_.push_back(std::make_unique<Subprocess>(std::vector<std::string>{
          BinPath("shrink-worker"), "--coordinator", address_, "--metrics", "127.0.0.1:0", "--slots", "1",
          "--threads", "1", "--cache", dir_ + "/worker" + std::to_string(i)}));
      auto worker_ready = workers_.back()->WaitForReadyLine("shrink-worker ready");
      worker_metrics_ports_.push_back(
          std::stoi(worker_ready["metrics"].substr(worker_ready["metrics"].rfind(':') + 1)));
    }
  }

  // Runs the shrink client against this cluster.
  testing::CommandResult Shrink(std::vector<std::string> args) {
    args.insert(args.begin(), BinPath("shrink"));
    args.push_back("--coordinator");
    args.push_back(address_);
    return RunCommand(args);
  }

  std::map<std::string, std::string> KillCoordinatorMidJob(const std::string& search, int budget,
                                                           int results, std::string* id);

  std::string WriteJobFile(int budget, const std::string& search) {
    std::string path = dir_ + "/job.yaml";
    std::ofstream(path) << "model: " << *model_ << "\n"
                        << "task: fashion-mnist\n"
                        << "target_size: 0.25\nmin_retention: 0.5\n"
                        << "budget: " << budget << "\nsearch: " << search << "\nseed: 7\n";
    return path;
  }

  static std::string* root_;
  static std::string* model_;
  std::string dir_;
  std::string address_;
  int coordinator_metrics_port_ = 0;
  std::vector<int> worker_metrics_ports_;
  std::unique_ptr<Subprocess> coordinator_;
  std::vector<std::unique_ptr<Subprocess>> workers_;
};

std::string* ClusterTest::root_ = nullptr;

// Runs Prometheus's own linter (Debian's promtool) over a scrape.
void ExpectPromtoolAccepts(const std::string& scrape, const std::string& dir) {
  std::string path = dir + "/scrape.txt";
  ASSERT_TRUE(WriteFileAtomic(path, scrape).ok());
  auto checked = RunCommand({"/bin/sh", "-c", "promtool check metrics < " + path});
  EXPECT_EQ(checked.exit_code, 0) << checked.out << checked.err;
}
std::string* ClusterTest::model_ = nullptr;

TEST_F(ClusterTest, SubmitWatchFetchEvalAndScrapeMetrics) {
  constexpr int kBudget = 6;
  auto submitted = Shrink({"submit", WriteJobFile(kBudget, "random")});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  std::string id = submitted.out.substr(0, submitted.out.find('\n'));
  ASSERT_FALSE(id.empty());

  auto watched = Shrink({"watch", id});
  ASSERT_EQ(watched.exit_code, 0) << watched.out << watched.err;
  EXPECT_NE(watched.out.find("succeeded"), std::string::npos) << watched.out;

  auto status = Shrink({"status", id, "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  auto job = nlohmann::json::parse(status.out);
  EXPECT_EQ(job["state"], "succeeded");
  EXPECT_EQ(job["evaluated"], kBudget);
  EXPECT_LE(job["size_ratio"].get<double>(), 0.25);

  auto listed = Shrink({"list"});
  ASSERT_EQ(listed.exit_code, 0);
  EXPECT_NE(listed.out.find(id), std::string::npos);

  // The artifact is a real model: it loads and measures as the job said.
  std::string out = dir_ + "/fetched";
  auto fetched = Shrink({"fetch", id, "--out", out});
  ASSERT_EQ(fetched.exit_code, 0) << fetched.err;
  auto evaluated = RunCommand({BinPath("shrink"), "eval", "--model", out, "--json", "--threads", "1"});
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.err;
  auto eval = nlohmann::json::parse(evaluated.out);
  EXPECT_EQ(eval["bytes"], job["bytes"]);
  EXPECT_DOUBLE_EQ(eval["accuracy"].get<double>(), job["accuracy"].get<double>());
  EXPECT_LT(eval["bytes"].get<int64_t>(), job["baseline"]["bytes"].get<int64_t>() / 4);
  // ... and ships deployable: model.onnx with its export.json, named in the manifest.
  EXPECT_TRUE(PathExists(out + "/model.onnx"));
  auto exported = nlohmann::json::parse(*ReadFile(out + "/export.json"));
  EXPECT_EQ(exported["model_type"], "shrink-cnn");
  auto manifest = nlohmann::json::parse(*ReadFile(out + "/manifest.json"));
  EXPECT_EQ(manifest["deploy"]["onnx"], "model.onnx");
  bool listed_onnx = false;
  for (const auto& f : manifest["files"]) listed_onnx = listed_onnx || f["name"] == "model.onnx";
  EXPECT_TRUE(listed_onnx) << manifest["files"].dump();

  std::string coordinator = HttpGet("127.0.0.1", coordinator_metrics_port_, "/metrics");
  EXPECT_EQ(MetricValue(coordinator, "shrink_jobs{state=\"succeeded\"}"), 1);
  EXPECT_EQ(MetricValue(coordinator, "shrink_workers_connected"), 2);
  EXPECT_EQ(MetricValue(coordinator, "shrink_worker_slots"), 2);
  EXPECT_EQ(MetricValue(coordinator, "shrink_queue_depth"), 0);
  // describe + budget + finalize
  EXPECT_EQ(MetricValue(coordinator, "shrink_candidates_completed_total{outcome=\"ok\"}"), kBudget + 2);
  EXPECT_EQ(MetricValue(coordinator, "shrink_candidates_dispatched_total{kind=\"evaluate\"}"), kBudget);
  EXPECT_EQ(MetricValue(coordinator, "shrink_candidate_evaluation_seconds_count"), kBudget + 2);
  EXPECT_GT(MetricValue(coordinator, "shrink_blob_bytes_received_total"), 0);
  ExpectPromtoolAccepts(coordinator, dir_);
  double evaluations = 0;
  for (int port : worker_metrics_ports_) {
    std::string worker = HttpGet("127.0.0.1", port, "/metrics");
    double mine = MetricValue(worker, "shrink_worker_tasks_total{kind=\"evaluate\",outcome=\"ok\"}");
    EXPECT_GE(mine, 1) << "both workers take candidates";
    evaluations += mine;
    EXPECT_EQ(MetricValue(worker, "shrink_worker_connected"), 1);
    ExpectPromtoolAccepts(worker, dir_);
  }
  EXPECT_EQ(evaluations, kBudget);
}

// Every candidate of an onnxruntime job is timed in ONNX Runtime on its export, the baseline
// beside it; the same job in libtorch measures different latencies, recorded as libtorch.
TEST_F(ClusterTest, AnOnnxRuntimeJobTimesEveryCandidateInOnnxRuntime) {
  std::map<std::string, nlohmann::json> manifests;
  for (const std::string runtime : {"onnxruntime", "libtorch"}) {
    auto submitted = Shrink({"submit", WriteJobFile(3, "random"), "--runtime", runtime});
    ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
    const std::string id = submitted.out.substr(0, submitted.out.find('\n'));
    auto watched = Shrink({"watch", id});
    ASSERT_EQ(watched.exit_code, 0) << watched.out << watched.err;
    auto status = Shrink({"status", id});
    EXPECT_NE(status.out.find("runtime " + runtime), std::string::npos) << status.out;
    const std::string out = dir_ + "/fetched-" + runtime;
    auto fetched = Shrink({"fetch", id, "--out", out});
    ASSERT_EQ(fetched.exit_code, 0) << fetched.err;
    manifests[runtime] = nlohmann::json::parse(*ReadFile(out + "/manifest.json"));
  }
  for (const auto& [runtime, manifest] : manifests) {
    EXPECT_EQ(manifest["runtime"], runtime);
    EXPECT_EQ(manifest["spec"]["runtime"], runtime);
    ASSERT_EQ(manifest["history"].size(), 3u);
    for (const auto& candidate : manifest["history"]) {
      const auto& evaluation = candidate["evaluation"];
      EXPECT_EQ(evaluation["candidate"]["runtime"], runtime) << candidate.dump();
      EXPECT_EQ(evaluation["baseline"]["runtime"], runtime) << candidate.dump();
      EXPECT_GT(evaluation["candidate"]["latency_ms"].get<double>(), 0) << candidate.dump();
    }
    EXPECT_EQ(manifest["final_evaluation"]["candidate"]["runtime"], runtime);
  }
  // The two runtimes time the same uncompressed model differently.
  EXPECT_NE(manifests["onnxruntime"]["final_evaluation"]["baseline"]["latency_ms"],
            manifests["libtorch"]["final_evaluation"]["baseline"]["latency_ms"]);
}

TEST_F(ClusterTest, CompressOnTheClusterPrintsJsonAndWritesTheModel) {
  std::string out = dir_ + "/compressed";
  auto compressed = Shrink({"compress", "--model", *model_, "--task", "fashion-mnist", "--target-size", "0.3",
                            "--min-retention", "0.5", "--budget", "3", "--search", "uniform", "--out", out,
                            "--json"});
  ASSERT_EQ(compressed.exit_code, 0) << compressed.err;
  auto result = nlohmann::json::parse(compressed.out);
  for (const char* key : {"bytes", "params", "latency_ms", "accuracy", "retention", "size_ratio", "speedup"}) {
    EXPECT_TRUE(result.contains(key)) << key;
  }
  EXPECT_EQ(result["state"], "succeeded");
  EXPECT_LE(result["size_ratio"].get<double>(), 0.3);
  EXPECT_EQ(*FileSize(out + "/model.safetensors") + *FileSize(out + "/config.json"), result["bytes"].get<int64_t>());
}

TEST_F(ClusterTest, WorkerKilledMidJobLosesNoCandidate) {
  constexpr int kBudget = 8;
  auto submitted = Shrink({"submit", WriteJobFile(kBudget, "uniform")});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  std::string id = submitted.out.substr(0, submitted.out.find('\n'));
  // Kill one worker as soon as it has finished a candidate (its scrape says so).
  while (MetricValue(HttpGet("127.0.0.1", worker_metrics_ports_[0], "/metrics"),
                     "shrink_worker_tasks_total{kind=\"evaluate\",outcome=\"ok\"}") < 1) {
    auto status = Shrink({"status", id, "--json"});
    ASSERT_EQ(status.exit_code, 0);
    std::string state = nlohmann::json::parse(status.out)["state"];
    ASSERT_TRUE(state == "queued" || state == "searching") << "job " << state << " before worker 0 did any work";
  }
  workers_[0]->Kill(SIGKILL);
  workers_[0]->Wait();

  auto watched = Shrink({"watch", id});
  ASSERT_EQ(watched.exit_code, 0) << watched.out << watched.err;
  auto job = nlohmann::json::parse(Shrink({"status", id, "--json"}).out);
  EXPECT_EQ(job["state"], "succeeded");
  EXPECT_EQ(job["evaluated"], kBudget);
  std::string coordinator = HttpGet("127.0.0.1", coordinator_metrics_port_, "/metrics");
  EXPECT_EQ(MetricValue(coordinator, "shrink_workers_connected"), 1);
  EXPECT_EQ(MetricValue(coordinator, "shrink_candidates_completed_total{outcome=\"ok\"}"), kBudget + 2);
}

// Submits a job, SIGKILLs the coordinator once `results` tasks finished ok
// (describe included), restarts it on the same state and lets the job finish.
// Returns the restarted coordinator's ready line.
std::map<std::string, std::string> ClusterTest::KillCoordinatorMidJob(const std::string& search, int budget,
                                                                      int results, std::string* id) {
  auto submitted = Shrink({"submit", WriteJobFile(budget, search)});
  EXPECT_EQ(submitted.exit_code, 0) << submitted.err;
  *id = submitted.out.substr(0, submitted.out.find('\n'));
  while (MetricValue(HttpGet("127.0.0.1", coordinator_metrics_port_, "/metrics"),
                     "shrink_candidates_completed_total{outcome=\"ok\"}") < results) {
  }
  coordinator_->Kill(SIGKILL);
  coordinator_->Wait();

  // Same address and state folder: the workers find it again by themselves.
  coordinator_ = std::make_unique<Subprocess>(std::vector<std::string>{
      BinPath("shrink-coordinator"), "--listen", address_, "--metrics", "127.0.0.1:0", "--state",
      dir_ + "/state"});
  return coordinator_->WaitForReadyLine("shrink-coordinator ready");
}

TEST_F(ClusterTest, KilledCoordinatorRestartsAndWorkersReconnect) {
  constexpr int kBudget = 6;
  std::string id;
  auto ready = KillCoordinatorMidJob("random", kBudget, 2, &id);  // describe + one candidate
  ASSERT_EQ(ready["grpc"], address_);
  auto watched = Shrink({"watch", id});
  ASSERT_EQ(watched.exit_code, 0) << watched.out << watched.err;
  auto job = nlohmann::json::parse(Shrink({"status", id, "--json"}).out);
  EXPECT_EQ(job["state"], "succeeded");
  EXPECT_EQ(job["evaluated"], kBudget);
  int metrics_port = std::stoi(ready["metrics"].substr(ready["metrics"].rfind(':') + 1));
  EXPECT_EQ(MetricValue(HttpGet("127.0.0.1", metrics_port, "/metrics"), "shrink_workers_connected"), 2);
}

TEST_F(ClusterTest, KilledCoordinatorContinuesTheDdpgAgentFromItsCheckpoint) {
  constexpr int kBudget = 6;
  std::string id;
  auto ready = KillCoordinatorMidJob("ddpg", kBudget, 3, &id);  // describe + two candidates
  ASSERT_EQ(ready["grpc"], address_);
  auto watched = Shrink({"watch", id});
  ASSERT_EQ(watched.exit_code, 0) << watched.out << watched.err;
  auto job = nlohmann::json::parse(Shrink({"status", id, "--json"}).out);
  EXPECT_EQ(job["state"], "succeeded");
  EXPECT_EQ(job["evaluated"], kBudget);
  // The fetched artifact's manifest lists every candidate once.
  auto fetched = Shrink({"fetch", id, "--out", dir_ + "/fetched"});
  ASSERT_EQ(fetched.exit_code, 0) << fetched.err;
  auto manifest = nlohmann::json::parse(*ReadFile(dir_ + "/fetched/manifest.json"));
  EXPECT_EQ(manifest["spec"]["search"], "ddpg");
  ASSERT_EQ(manifest["history"].size(), static_cast<size_t>(kBudget));
  std::set<int64_t> ids;
  for (const auto& c : manifest["history"]) ids.insert(std::stoll(c["id"].get<std::string>()));
  EXPECT_EQ(ids.size(), static_cast<size_t>(kBudget)) << "no candidate lost or counted twice";
}

TEST_F(ClusterTest, CancelStopsTheJob) {
  auto submitted = Shrink({"submit", WriteJobFile(500, "random")});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  std::string id = submitted.out.substr(0, submitted.out.find('\n'));
  auto cancelled = Shrink({"cancel", id});
  ASSERT_EQ(cancelled.exit_code, 0) << cancelled.err;
  EXPECT_NE(cancelled.out.find("cancelled"), std::string::npos);
  auto job = nlohmann::json::parse(Shrink({"status", id, "--json"}).out);
  EXPECT_EQ(job["state"], "cancelled");
  EXPECT_LT(job["evaluated"].get<int>(), 500);
  auto fetched = Shrink({"fetch", id, "--out", dir_ + "/none"});
  EXPECT_EQ(fetched.exit_code, 1);
  EXPECT_NE(fetched.err.find("cancelled"), std::string::npos) << fetched.err;
}

// Debian's Prometheus scrapes the three real /metrics endpoints; every
// family the coordinator and workers promise answers a PromQL query.
TEST_F(ClusterTest, RealPrometheusScrapesEveryBinary) {
  auto submitted = Shrink({"submit", WriteJobFile(2, "uniform")});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  std::string id = submitted.out.substr(0, submitted.out.find('\n'));
  ASSERT_EQ(Shrink({"watch", id}).exit_code, 0);

  std::string config = dir_ + "/prometheus.yml";
  std::ofstream(config) << "global:\n  scrape_interval: 1s\nscrape_configs:\n"
                        << "  - job_name: shrink-coordinator\n    static_configs:\n"
                        << "      - targets: ['127.0.0.1:" << coordinator_metrics_port_ << "']\n"
                        << "  - job_name: shrink-worker\n    static_configs:\n"
                        << "      - targets: ['127.0.0.1:" << worker_metrics_ports_[0] << "', '127.0.0.1:"
                        << worker_metrics_ports_[1] << "']\n";
  Subprocess prometheus({"/bin/sh", "-c",
                         "exec prometheus --config.file=" + config + " --storage.tsdb.path=" + dir_ +
                             "/tsdb --web.listen-address=127.0.0.1:0 2>&1"});
  std::string listening = prometheus.WaitForLineContaining("msg=\"Listening on\"");
  int port = std::stoi(listening.substr(listening.rfind(':') + 1));

  // Prometheus's own answer, as a dashboard would ask it.
  auto query = [&](const std::string& promql) {
    httplib::Client client("127.0.0.1", port);
    auto response = client.Get("/api/v1/query", httplib::Params{{"query", promql}}, httplib::Headers{});
    if (!response || response->status != 200) return nlohmann::json();
    return nlohmann::json::parse(response->body)["data"]["result"];
  };
  // Scrapes start within a second or two; wait for all three targets.
  auto all_up = [&] {
    auto up = query("sum(up)");
    return !up.empty() && up[0]["value"][1] == "3";
  };
  for (int poll = 0; !all_up(); ++poll) {
    ASSERT_LT(poll, 300) << "Prometheus never saw all three targets up";
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // polling a condition, not a sync point
  }
  for (const char* promql : {
           "shrink_jobs{state=\"succeeded\"} == 1",
           "shrink_jobs_submitted_total == 1",
           "shrink_candidates_dispatched_total{kind=\"evaluate\"} == 2",
           "shrink_candidates_completed_total{outcome=\"ok\"} == 4",
           "shrink_candidate_evaluation_seconds_count == 4",
           "shrink_queue_depth == 0",
           "shrink_workers_connected{job=\"shrink-coordinator\"} == 2",
           "shrink_worker_slots_busy{job=\"shrink-coordinator\"} == 0",
           "shrink_blob_bytes_received_total > 0",
           "sum(shrink_worker_tasks_total{job=\"shrink-worker\",kind=\"evaluate\",outcome=\"ok\"}) == 2",
           "count(shrink_worker_connected{job=\"shrink-worker\"} == 1) == 2",
           "sum(shrink_worker_task_seconds_count{job=\"shrink-worker\"}) == 4",
           "sum(shrink_worker_blob_fetched_bytes_total) > 0",
       }) {
    EXPECT_FALSE(query(promql).empty()) << promql;
  }
}

TEST_F(ClusterTest, SigtermStopsWorkersAndCoordinatorCleanly) {
  for (auto& worker : workers_) {
    worker->Kill(SIGTERM);
    EXPECT_EQ(worker->Wait(), 0);
  }
  coordinator_->Kill(SIGTERM);
  EXPECT_EQ(coordinator_->Wait(), 0);
}

TEST_F(ClusterTest, BadInputGetsClearErrors) {
  auto unknown = Shrink({"status", "job-doesnotexist"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("job-doesnotexist"), std::string::npos) << unknown.err;

  std::string bad = dir_ + "/bad.yaml";
  std::ofstream(bad) << "model: " << *model_ << "\nbudget: 0\n";
  auto zero_budget = Shrink({"submit", bad});
  EXPECT_EQ(zero_budget.exit_code, 1);
  EXPECT_NE(zero_budget.err.find("spec.budget"), std::string::npos) << zero_budget.err;

  std::ofstream(bad) << "model: " << *model_ << "\ntarget_size: 0.25\nsurch: random\n";
  auto typo = Shrink({"submit", bad});
  EXPECT_EQ(typo.exit_code, 1);
  EXPECT_NE(typo.err.find("surch"), std::string::npos) << typo.err;

  auto usage = Shrink({"watch"});
  EXPECT_EQ(usage.exit_code, 2);
}

}  // namespace
}  // namespace shrink
