// Faults with real processes on loopback, beyond cluster_test's killed
// worker and killed coordinator: a hung worker, evaluations that throw, a
// client that disconnects mid-watch or mid-fetch, and a full or unwritable
// state folder. Workers are `shrink-worker --simulate` processes.
#include <signal.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "absl/time/clock.h"
#include "common/blob_upload.h"
#include "common/channel.h"
#include "common/files.h"
#include "common/sha256.h"
#include "tests/test_util/coordinator_process.h"
#include "tests/test_util/subprocess.h"

namespace shrink {
namespace {

using testing::BinPath;
using testing::HttpGet;
using testing::MetricValue;
using testing::RunCommand;
using testing::Subprocess;

class FaultsTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = *MakeTempDir("shrink-faults-"); }
  void TearDown() override {
    workers_.clear();
    coordinator_.process.reset();
    RemoveAll(dir_);
  }

  void Start(const std::vector<std::string>& args = {}) {
    coordinator_ = testing::StartCoordinator(dir_ + "/state", args);
    stub_ = v1::Coordinator::NewStub(MakeCoordinatorChannel(coordinator_.address));
  }
  void AddWorker(double seconds, const std::vector<std::string>& args = {}, int* metrics_port = nullptr) {
    workers_.push_back(testing::StartSimulatedWorker(coordinator_.address, seconds,
                                                     dir_ + "/cache" + std::to_string(workers_.size()), args,
                                                     metrics_port));
  }
  std::string Submit(int budget) {
    grpc::ClientContext context;
    v1::SubmitJobRequest request;
    *request.mutable_spec() = testing::UploadedSpec(stub_.get(), dir_, budget);
    v1::Job job;
    grpc::Status s = stub_->SubmitJob(&context, request, &job);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return job.id();
  }
  v1::Job Get(const std::string& id) {
    grpc::ClientContext context;
    v1::GetJobRequest request;
    request.set_id(id);
    v1::Job job;
    EXPECT_TRUE(stub_->GetJob(&context, request, &job).ok());
    return job;
  }
  v1::Job WatchToEnd(const std::string& id) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    v1::WatchJobRequest request;
    request.set_id(id);
    auto reader = stub_->WatchJob(&context, request);
    v1::JobEvent event;
    v1::Job last;
    while (reader->Read(&event)) last = event.job();
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return last;
  }
  std::vector<v1::CandidateSummary> Candidates(const std::string& id) {
    grpc::ClientContext context;
    v1::ListCandidatesRequest request;
    request.set_id(id);
    v1::ListCandidatesResponse response;
    EXPECT_TRUE(stub_->ListCandidates(&context, request, &response).ok());
    return {response.candidates().begin(), response.candidates().end()};
  }
  double CoordinatorMetric(const std::string& series) {
    return MetricValue(HttpGet("127.0.0.1", coordinator_.metrics_port, "/metrics"), series);
  }
  testing::CommandResult Shrink(std::vector<std::string> args) {
    args.insert(args.begin(), BinPath("shrink"));
    args.push_back("--coordinator");
    args.push_back(coordinator_.address);
    return RunCommand(args);
  }

  std::string dir_;
  testing::CoordinatorProcess coordinator_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
  std::vector<std::unique_ptr<Subprocess>> workers_;
};

// Cancelling a job recalls its running task from the worker, which stops it and frees the
// slot at once instead of after the task's 600 s; it sends no result for it.
TEST_F(FaultsTest, CancellingAJobStopsItsRunningTaskInTheWorker) {
  Start();
  int worker_port = 0;
  AddWorker(600, {}, &worker_port);
  auto worker_metric = [&](const std::string& series) {
    return MetricValue(HttpGet("127.0.0.1", worker_port, "/metrics"), series);
  };
  std::string id = Submit(3);
  while (worker_metric("shrink_worker_slots_busy") < 1) std::this_thread::yield();  // describing
  const absl::Time cancelled_at = absl::Now();
  ASSERT_EQ(Shrink({"cancel", id}).exit_code, 0);
  const std::string recalled = "shrink_worker_tasks_total{kind=\"describe\",outcome=\"recalled\"}";
  while (worker_metric(recalled) < 1) {
    ASSERT_LT(absl::Now() - cancelled_at, absl::Seconds(60)) << "the recalled task is still running";
    std::this_thread::yield();
  }
  EXPECT_EQ(worker_metric("shrink_worker_slots_busy"), 0);
  EXPECT_EQ(worker_metric("shrink_worker_tasks_total{kind=\"describe\",outcome=\"ok\"}"), 0);
  EXPECT_EQ(Get(id).state(), v1::CANCELLED);
}

// SIGSTOP keeps the worker's TCP connection open but it answers nothing, and
// sends no heartbeat: the lease expires, the candidate goes to the other worker,
// and the stopped one gets no new work; its late answer (after SIGCONT) is not
// counted twice. Tasks (0.3 s) are long enough to be heartbeated (every 0.1 s).
TEST_F(FaultsTest, HungWorkerIsDetectedByItsLeaseAndItsCandidateRunsElsewhere) {
  constexpr int kBudget = 10;
  Start({"--lease-seconds", "1"});
  AddWorker(0.3, {"--heartbeat-seconds", "0.1"});
  AddWorker(0.3, {"--heartbeat-seconds", "0.1"});
  std::string id = Submit(kBudget);
  while (Get(id).evaluated() < 1) std::this_thread::yield();
  workers_[0]->Kill(SIGSTOP);
  v1::Job done = WatchToEnd(id);
  workers_[0]->Kill(SIGCONT);
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  EXPECT_EQ(done.evaluated(), kBudget);
  EXPECT_EQ(done.failed(), 0);
  EXPECT_GE(CoordinatorMetric("shrink_candidates_completed_total{outcome=\"lease_expired\"}"), 1);
  std::set<int64_t> ids;
  for (const auto& c : Candidates(id)) {
    EXPECT_EQ(c.outcome(), "ok");
    ids.insert(c.id());
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kBudget));
  EXPECT_EQ(*ids.rbegin(), kBudget - 1);
}

// Tasks three times as long as the lease (a long finalize) complete without a
// lease expiring: the workers' heartbeats renew them. Without heartbeats each
// attempt would expire and be re-run until the job failed.
TEST_F(FaultsTest, TasksLongerThanTheLeaseCompleteWhileTheirWorkerHeartbeats) {
  Start({"--lease-seconds", "1"});
  AddWorker(3, {"--heartbeat-seconds", "0.1"});
  AddWorker(3, {"--heartbeat-seconds", "0.1"});
  std::string id = Submit(2);
  v1::Job done = WatchToEnd(id);
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  EXPECT_EQ(done.evaluated(), 2);
  EXPECT_EQ(done.failed(), 0);
  EXPECT_EQ(CoordinatorMetric("shrink_candidates_completed_total{outcome=\"lease_expired\"}"), 0);
  EXPECT_EQ(CoordinatorMetric("shrink_candidates_dispatched_total{kind=\"evaluate\"}"), 2) << "none re-run";
  EXPECT_GE(CoordinatorMetric("shrink_worker_heartbeats_total"), 20);  // 4 tasks of 3 s, every 0.1 s
}

// Every evaluation throws: each candidate is tried --max-attempts (3) times,
// recorded as failed with the pass's error, and the job ends FAILED.
TEST_F(FaultsTest, EvaluationsThatAlwaysThrowAreRetriedBoundedAndFailTheJob) {
  constexpr int kBudget = 3;
  Start();
  AddWorker(0.01, {"--simulate-fail-rate", "1"});
  std::string id = Submit(kBudget);
  v1::Job done = WatchToEnd(id);
  EXPECT_EQ(done.state(), v1::FAILED);
  EXPECT_EQ(done.failed(), kBudget);
  EXPECT_NE(done.error().find("simulated pass failure"), std::string::npos) << done.error();
  auto candidates = Candidates(id);
  ASSERT_EQ(candidates.size(), static_cast<size_t>(kBudget));
  for (const auto& c : candidates) {
    EXPECT_EQ(c.outcome(), "failed");
    EXPECT_NE(c.error().find("task threw: simulated pass failure"), std::string::npos) << c.error();
  }
  EXPECT_EQ(CoordinatorMetric("shrink_candidates_dispatched_total{kind=\"evaluate\"}"), 3 * kBudget);
  EXPECT_EQ(CoordinatorMetric("shrink_candidates_completed_total{outcome=\"failed\"}"), 3 * kBudget);
}

// Half the attempts throw: retries carry candidates through; a candidate
// whose three attempts all threw is recorded failed, and the job still ends.
TEST_F(FaultsTest, EvaluationsThatSometimesThrowAreRetried) {
  constexpr int kBudget = 12;
  Start();
  AddWorker(0.01, {"--simulate-fail-rate", "0.5"});
  std::string id = Submit(kBudget);
  v1::Job done = WatchToEnd(id);
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  EXPECT_EQ(done.evaluated(), kBudget);
  double dispatched = CoordinatorMetric("shrink_candidates_dispatched_total{kind=\"evaluate\"}");
  double failed_attempts = CoordinatorMetric("shrink_candidates_completed_total{outcome=\"failed\"}");
  EXPECT_GT(dispatched, kBudget) << "at a 50% failure rate some of " << kBudget << " candidates are retried";
  EXPECT_LE(dispatched, 3 * kBudget);
  // Every attempt ends once: ok evaluations + describe + finalize, or failed.
  EXPECT_EQ(dispatched + 2, failed_attempts + CoordinatorMetric("shrink_candidates_completed_total{outcome=\"ok\"}"));
  int failed = 0;
  for (const auto& c : Candidates(id)) {
    if (c.outcome() != "failed") continue;
    ++failed;
    EXPECT_NE(c.error().find("simulated pass failure"), std::string::npos) << c.error();
  }
  EXPECT_EQ(done.failed(), failed);
}

// `shrink watch` killed mid-job; a new `shrink watch` picks the job up where it is.
TEST_F(FaultsTest, WatchClientKilledMidJobWatchesAgainToTheEnd) {
  Start();
  std::string id = Submit(40);
  Subprocess watch({"/bin/sh", "-c", "exec " + BinPath("shrink") + " watch " + id + " --coordinator " +
                                         coordinator_.address + " 2>&1"});
  // The worker only once the watch runs: however slowly it starts, it sees the search.
  watch.WaitForLineContaining("queued");
  AddWorker(0.05);
  watch.WaitForLineContaining("searching");
  watch.Kill(SIGKILL);
  watch.Wait();
  int seen = Get(id).evaluated();
  auto again = Shrink({"watch", id});
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_NE(again.out.find("succeeded"), std::string::npos) << again.out;
  EXPECT_GE(Get(id).evaluated(), seen);
  EXPECT_EQ(Get(id).evaluated(), 40);
}

// An interrupted fetch leaves "<file>.part"; the next fetch asks only for the
// rest of it and the files after it (the coordinator's bytes-sent counter proves it) and checks the digest.
TEST_F(FaultsTest, FetchResumesFromAPartialFileAndRefusesACorruptOne) {
  Start();
  AddWorker(0.01);
  std::string id = Submit(2);
  ASSERT_EQ(WatchToEnd(id).state(), v1::SUCCEEDED);
  std::string whole_dir = dir_ + "/whole";
  ASSERT_EQ(Shrink({"fetch", id, "--out", whole_dir}).exit_code, 0);
  auto whole = ReadFile(whole_dir + "/simulated.json");
  ASSERT_TRUE(whole.ok());
  ASSERT_GT(whole->size(), 100u);

  std::string out = dir_ + "/resumed";
  ASSERT_TRUE(MakeDirs(out).ok());
  const size_t half = whole->size() / 2;
  // The server streams from the resumed file through the files after it (manifest.json).
  auto manifest = ReadFile(whole_dir + "/manifest.json");
  ASSERT_TRUE(manifest.ok());
  const double rest = static_cast<double>(whole->size() - half + manifest->size());
  ASSERT_TRUE(WriteFileAtomic(out + "/simulated.json.part", whole->substr(0, half)).ok());
  double sent_before = CoordinatorMetric("shrink_blob_bytes_sent_total");
  auto fetched = Shrink({"fetch", id, "--out", out});
  ASSERT_EQ(fetched.exit_code, 0) << fetched.err;
  EXPECT_EQ(*ReadFile(out + "/simulated.json"), *whole);
  EXPECT_FALSE(PathExists(out + "/simulated.json.part"));
  EXPECT_EQ(CoordinatorMetric("shrink_blob_bytes_sent_total") - sent_before, rest);
  // Fetching again into a complete folder transfers nothing.
  ASSERT_EQ(Shrink({"fetch", id, "--out", out}).exit_code, 0);
  EXPECT_EQ(CoordinatorMetric("shrink_blob_bytes_sent_total") - sent_before, rest);

  // A corrupt partial file: the digest check catches it, the file is removed, a retry succeeds.
  std::string bad = dir_ + "/corrupt";
  ASSERT_TRUE(MakeDirs(bad).ok());
  ASSERT_TRUE(WriteFileAtomic(bad + "/simulated.json.part", std::string(half, '#')).ok());
  auto refused = Shrink({"fetch", id, "--out", bad});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("fetch again"), std::string::npos) << refused.err;
  EXPECT_FALSE(PathExists(bad + "/simulated.json"));
  ASSERT_EQ(Shrink({"fetch", id, "--out", bad}).exit_code, 0);
  EXPECT_EQ(*ReadFile(bad + "/simulated.json"), *whole);
}

// A state folder that cannot be created is a clear startup error.
TEST_F(FaultsTest, UnwritableStateFolderIsAClearError) {
  std::string file = dir_ + "/a-file";
  ASSERT_TRUE(WriteFileAtomic(file, "x").ok());
  auto r = RunCommand({BinPath("shrink-coordinator"), "--listen", "127.0.0.1:0", "--state", file + "/state"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(file), std::string::npos) << r.err;
}

// A full disk (here: a 1 MiB file size limit, which fails writes with EFBIG
// as ENOSPC would): the upload fails with a clear error, nothing half-written
// becomes visible, and the coordinator keeps serving.
TEST_F(FaultsTest, FullDiskFailsTheUploadCleanlyAndTheCoordinatorGoesOn) {
  coordinator_.process = std::make_unique<Subprocess>(std::vector<std::string>{
      "/bin/sh", "-c",
      "ulimit -f 2048; trap '' XFSZ; exec " + BinPath("shrink-coordinator") +
          " --listen 127.0.0.1:0 --metrics 127.0.0.1:0 --state " + dir_ + "/state"});
  auto ready = coordinator_.process->WaitForReadyLine("shrink-coordinator ready");
  coordinator_.address = ready["grpc"];
  coordinator_.metrics_port = std::stoi(ready["metrics"].substr(ready["metrics"].rfind(':') + 1));
  stub_ = v1::Coordinator::NewStub(MakeCoordinatorChannel(coordinator_.address));

  std::string big = dir_ + "/big.bin";
  ASSERT_TRUE(WriteFileAtomic(big, std::string(3 << 20, 'z')).ok());
  auto ref = DescribeFile(big, "model.safetensors");
  absl::Status s = UploadFile(stub_.get(), big, *ref);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("File too large"), std::string::npos) << s;
  v1::StatBlobsRequest request;
  request.add_sha256(ref->sha256());
  v1::StatBlobsResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->StatBlobs(&context, request, &response).ok());
  EXPECT_EQ(response.missing_size(), 1);
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir_ + "/state/blobs/tmp", error)) {
    ADD_FAILURE() << "left behind: " << entry.path();
  }
  // Small uploads and jobs still work.
  AddWorker(0.01);
  std::string id = Submit(2);
  EXPECT_EQ(WatchToEnd(id).state(), v1::SUCCEEDED);
}

}  // namespace
}  // namespace shrink
