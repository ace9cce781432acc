// The coordinator through its real gRPC services on an in-process channel,
// with fake workers that answer tasks synthetically (no models needed).
#include "server/coordinator_server.h"

#include <grpcpp/client_context.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>

#include "agent/search.h"
#include "common/blob_upload.h"
#include "common/files.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "google/protobuf/util/message_differencer.h"
#include "server/storage/job_store.h"
#include "tests/test_util/cnn_description.h"
#include "tests/test_util/fake_worker.h"
#include "tests/test_util/subprocess.h"

namespace shrink {
namespace {

using testing::FakeWorker;
using testing::SyntheticResult;

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = *MakeTempDir("coordinator-test-");
    StartServer(absl::Minutes(10));
  }
  void TearDown() override {
    StopHeartbeats();
    workers_.clear();
    server_.reset();
    RemoveAll(dir_);
  }

  void StartServer(absl::Duration lease, absl::Duration max_task = absl::Hours(1)) {
    server::CoordinatorServerOptions options;
    options.coordinator.state_dir = dir_ + "/state";
    options.coordinator.lease = lease;
    options.coordinator.max_task = max_task;
    options.coordinator.lease_check = absl::Milliseconds(20);
    auto server = server::CoordinatorServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = v1::Coordinator::NewStub(server_->InProcessChannel());
  }

  void AddWorker(int slots, FakeWorker::Answer answer = SyntheticResult, const std::vector<std::string>& runtimes = {}) {
    workers_.push_back(std::make_unique<FakeWorker>(server_->InProcessChannel(), slots, answer, runtimes));
  }

  // A spec whose model files are uploaded (their content is never parsed here).
  v1::JobSpec Spec(int budget, const std::string& search = "random") {
    v1::JobSpec spec;
    for (const char* name : {"config.json", "model.safetensors"}) {
      std::string path = dir_ + "/" + name;
      EXPECT_TRUE(WriteFileAtomic(path, std::string("model file ") + name).ok());
      auto ref = DescribeFile(path, name);
      EXPECT_TRUE(UploadFile(stub_.get(), path, *ref).ok());
      *spec.add_model_files() = *ref;
    }
    spec.mutable_task()->set_name("fashion-mnist");
    spec.mutable_goal()->set_target_size(0.3);
    spec.mutable_goal()->set_min_retention(0.9);
    spec.set_budget(budget);
    spec.set_search(search);
    return spec;
  }

  grpc::Status Submit(const v1::JobSpec& spec, v1::Job* job) {
    grpc::ClientContext context;
    v1::SubmitJobRequest request;
    *request.mutable_spec() = spec;
    return stub_->SubmitJob(&context, request, job);
  }

  // Follows WatchJob to the end and returns the last snapshot.
  v1::Job WatchToEnd(const std::string& id) {
    grpc::ClientContext context;
    v1::WatchJobRequest request;
    request.set_id(id);
    auto reader = stub_->WatchJob(&context, request);
    v1::JobEvent event;
    v1::Job last;
    while (reader->Read(&event)) {
      last = event.job();
      // A candidate travels only once one finished: never a default message reading as candidate 0.
      if (event.has_last_candidate()) EXPECT_NE(event.last_candidate().outcome(), "") << event.DebugString();
      if (event.job().evaluated() == 0) EXPECT_FALSE(event.has_last_candidate()) << event.DebugString();
    }
    EXPECT_TRUE(reader->Finish().ok());
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

  // Submits `spec` to one worker that answers two evaluations and never the third, then
  // stops the coordinator and the worker, as a crash would.
  v1::Job SubmitAndStopAfterTwoResults(const v1::JobSpec& spec) {
    std::atomic<int> answered{0};
    AddWorker(1, [&answered](const v1::Task& task, v1::WorkerPool::Stub* stub) {
      if (task.kind() == v1::Task::EVALUATE && answered.fetch_add(1) >= 2) return v1::TaskResult();
      return SyntheticResult(task, stub);
    });
    v1::Job job;
    grpc::Status submitted = Submit(spec, &job);
    EXPECT_TRUE(submitted.ok()) << submitted.error_message();
    while (submitted.ok() && answered.load() < 3) std::this_thread::yield();
    workers_.clear();
    server_.reset();
    return job;
  }

  // Restarts the coordinator with a fresh worker, follows `job` to its end, and returns
  // the ids of its candidates after checking it succeeded with `budget` of them, none twice.
  std::set<int64_t> RestartAndFinish(const v1::Job& job, int budget) {
    StartServer(absl::Minutes(10));
    AddWorker(2);
    v1::Job done = WatchToEnd(job.id());
    EXPECT_EQ(done.state(), v1::SUCCEEDED) << done.error();
    EXPECT_EQ(done.evaluated(), budget);
    std::set<int64_t> ids;
    for (const auto& c : Candidates(job.id())) ids.insert(c.id());
    EXPECT_EQ(ids.size(), static_cast<size_t>(budget)) << "every candidate once";
    return ids;
  }

  // The first evaluation any worker receives is held (never answered by it);
  // later deliveries of the same task (re-dispatches) are answered and recorded.
  struct Held {
    std::mutex mu;
    std::condition_variable cv;
    v1::Task task;                 // the held evaluation; empty task_id until one arrives
    int holder = -1;               // index of the worker holding it
    std::vector<int> again;        // workers it was dispatched to afterwards
    absl::Time again_at;           // when the first of those received it
  };
  FakeWorker::Answer HoldFirstEvaluation(int index) {
    return [this, index](const v1::Task& task, v1::WorkerPool::Stub* stub) {
      if (task.kind() == v1::Task::EVALUATE) {
        std::lock_guard<std::mutex> lock(held_.mu);
        if (held_.task.task_id().empty()) {
          held_.task = task;
          held_.holder = index;
          held_.cv.notify_all();
          return v1::TaskResult();  // holds it
        }
        if (task.task_id() == held_.task.task_id()) {
          if (held_.again.empty()) held_.again_at = absl::Now();
          held_.again.push_back(index);
          held_.cv.notify_all();
        }
      }
      return SyntheticResult(task, stub);
    };
  }
  // Restarts the coordinator with `lease` and `max_task`, adds two one-slot workers that
  // hold the first evaluation, submits a one-candidate job and waits until a worker holds
  // its task; that worker's index.
  int HoldOneTaskOnTwoWorkers(absl::Duration lease, absl::Duration max_task, v1::Job* job) {
    TearDown();
    dir_ = *MakeTempDir("coordinator-test-");
    StartServer(lease, max_task);
    AddWorker(1, HoldFirstEvaluation(0));
    AddWorker(1, HoldFirstEvaluation(1));
    EXPECT_TRUE(Submit(Spec(1), job).ok());
    return WaitForHeldTask();
  }
  // Waits until some worker holds the evaluation; its index.
  int WaitForHeldTask() {
    std::unique_lock<std::mutex> lock(held_.mu);
    EXPECT_TRUE(held_.cv.wait_for(lock, std::chrono::seconds(30), [&] { return held_.holder >= 0; }));
    return held_.holder;
  }
  // True once the held task was dispatched again, within `timeout`.
  bool WaitForRedispatch(absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(held_.mu);
    return held_.cv.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] { return !held_.again.empty(); });
  }
  // Worker `index` heartbeats `task_ids` every `period` (as shrink-worker does) until StopHeartbeats().
  void StartHeartbeats(int index, std::vector<std::string> task_ids, absl::Duration period) {
    {
      std::lock_guard<std::mutex> lock(pump_mu_);
      pump_stop_ = false;
    }
    pump_ = std::thread([this, index, task_ids, period] {
      std::unique_lock<std::mutex> lock(pump_mu_);
      while (!pump_stop_) {
        lock.unlock();
        workers_[index]->Heartbeat(task_ids);
        lock.lock();
        pump_cv_.wait_for(lock, absl::ToChronoNanoseconds(period), [&] { return pump_stop_; });
      }
    });
  }
  // Stops the heartbeats; when they stopped (no heartbeat is sent after it).
  absl::Time StopHeartbeats() {
    {
      std::lock_guard<std::mutex> lock(pump_mu_);
      pump_stop_ = true;
    }
    pump_cv_.notify_all();
    if (pump_.joinable()) pump_.join();
    return absl::Now();
  }
  double Metric(const std::string& series) {
    return testing::MetricValue(
        prometheus::TextSerializer().Serialize(server_->coordinator()->metrics()->registry()->Collect()), series);
  }
  // Polls the metric until it reaches `value` (false after `timeout`).
  bool WaitForMetric(const std::string& series, double value, absl::Duration timeout) {
    const absl::Time end = absl::Now() + timeout;
    while (Metric(series) < value) {
      if (absl::Now() > end) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a poll interval
    }
    return true;
  }
  static constexpr char kLeaseExpired[] = "shrink_candidates_completed_total{outcome=\"lease_expired\"}";

  std::string dir_;
  std::unique_ptr<server::CoordinatorServer> server_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
  std::vector<std::unique_ptr<FakeWorker>> workers_;
  Held held_;
  std::mutex pump_mu_;
  std::condition_variable pump_cv_;
  bool pump_stop_ = false;
  std::thread pump_;
};

TEST_F(CoordinatorTest, JobRunsDescribeSearchFinalizeAndServesTheArtifact) {
  AddWorker(2);
  v1::Job job;
  ASSERT_TRUE(Submit(Spec(5), &job).ok());
  EXPECT_EQ(job.state(), v1::QUEUED);
  v1::Job done = WatchToEnd(job.id());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  EXPECT_EQ(done.evaluated(), 5);
  EXPECT_EQ(done.description().layers_size(), 4);
  EXPECT_EQ(done.artifact_files_size(), 3) << "config.json, model.safetensors and manifest.json";
  EXPECT_EQ(done.final_evaluation().candidate().split(), "test");
  // Every candidate fits the size target: the search clamps before proposing.
  auto candidates = Candidates(job.id());
  ASSERT_EQ(candidates.size(), 5u);
  std::set<int64_t> ids;
  for (const auto& c : candidates) {
    EXPECT_EQ(c.outcome(), "ok");
    EXPECT_EQ(c.policy().layers_size(), 4);
    ids.insert(c.id());
  }
  EXPECT_EQ(ids.size(), 5u);

  grpc::ClientContext context;
  v1::FetchArtifactRequest request;
  request.set_id(job.id());
  auto reader = stub_->FetchArtifact(&context, request);
  v1::ArtifactChunk chunk;
  std::map<std::string, std::string> files;
  while (reader->Read(&chunk)) files[chunk.file()] += chunk.data();
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(files["config.json"], "fake config.json for " + job.id());

  // The manifest: policy, per-layer shapes and bits, metrics, the history.
  auto manifest = nlohmann::json::parse(files["manifest.json"], nullptr, false);
  ASSERT_FALSE(manifest.is_discarded()) << files["manifest.json"];
  EXPECT_EQ(manifest["job"], job.id());
  EXPECT_EQ(manifest["policy"]["layers"].size(), 4u);
  ASSERT_EQ(manifest["layers"].size(), 4u);
  EXPECT_EQ(manifest["layers"][0]["name"], "conv1");
  EXPECT_LE(manifest["layers"][0]["kept_out_features"].get<int64_t>(), 32);
  EXPECT_EQ(manifest["layers"][3]["kept_out_features"], 10) << "the output layer keeps its classes";
  EXPECT_TRUE(manifest["layers"][2].contains("bits"));
  EXPECT_EQ(manifest["final_evaluation"]["candidate"]["split"], "test");
  EXPECT_EQ(manifest["spec"]["search"], "random");
  EXPECT_DOUBLE_EQ(manifest["spec"]["reward"]["delta"].get<double>(), 5.0) << "effective weights";
  ASSERT_EQ(manifest["history"].size(), 5u);
  for (const auto& c : manifest["history"]) {
    EXPECT_TRUE(c.contains("reward"));
    EXPECT_EQ(c["policy"]["layers"].size(), 4u);
    EXPECT_TRUE(c["evaluation"].contains("retention"));
  }

  // Resuming inside the second file returns its tail, then the files after it.
  grpc::ClientContext resume_context;
  request.set_file("model.safetensors");
  request.set_offset(5);
  auto resumed = stub_->FetchArtifact(&resume_context, request);
  std::string tail;
  while (resumed->Read(&chunk)) tail += chunk.data();
  ASSERT_TRUE(resumed->Finish().ok());
  EXPECT_EQ(tail, files["model.safetensors"].substr(5) + files["manifest.json"]);
}

TEST_F(CoordinatorTest, HealthServiceReportsEachApiServing) {
  auto health = grpc::health::v1::Health::NewStub(server_->InProcessChannel());
  for (const char* service : {"", "shrink.v1.Coordinator", "shrink.v1.WorkerPool"}) {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    ASSERT_TRUE(health->Check(&context, request, &response).ok()) << service;
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("shrink.v1.Nope");
  grpc::health::v1::HealthCheckResponse response;
  EXPECT_EQ(health->Check(&context, request, &response).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(CoordinatorTest, KeepsOneCandidateInFlightPerFreeSlot) {
  // Three slots that hold every evaluation: the coordinator fills all three
  // and no more, then a second worker drains the rest.
  AddWorker(3, [](const v1::Task& task, v1::WorkerPool::Stub* stub) {
    if (task.kind() == v1::Task::EVALUATE) return v1::TaskResult();
    return SyntheticResult(task, stub);
  });
  v1::Job job;
  ASSERT_TRUE(Submit(Spec(10), &job).ok());
  while (workers_[0]->tasks_seen() < 4) std::this_thread::yield();  // describe + 3 evaluations
  v1::GetJobRequest request;
  request.set_id(job.id());
  v1::Job running;
  // Clients see a state once it is durable (group commit): SEARCHING follows shortly.
  do {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->GetJob(&context, request, &running).ok());
  } while (running.state() == v1::QUEUED);
  EXPECT_EQ(running.state(), v1::SEARCHING);
  EXPECT_EQ(running.in_flight(), 3);
  EXPECT_EQ(workers_[0]->tasks_seen(), 4);
  workers_[0]->Stop();
  AddWorker(2);
  v1::Job done = WatchToEnd(job.id());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  EXPECT_EQ(done.evaluated(), 10);
}

TEST_F(CoordinatorTest, SameRequestIdReturnsTheSameJob) {
  v1::JobSpec spec = Spec(3);
  spec.set_client_request_id("retry-me");
  v1::Job first, second;
  ASSERT_TRUE(Submit(spec, &first).ok());
  ASSERT_TRUE(Submit(spec, &second).ok());
  EXPECT_EQ(first.id(), second.id());
  grpc::ClientContext context;
  v1::ListJobsResponse list;
  ASSERT_TRUE(stub_->ListJobs(&context, v1::ListJobsRequest(), &list).ok());
  EXPECT_EQ(list.jobs_size(), 1);
}

TEST_F(CoordinatorTest, InvalidSpecsAreRefusedNamingTheField) {
  v1::Job job;
  v1::JobSpec spec = Spec(3);
  spec.set_budget(0);
  grpc::Status s = Submit(spec, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("spec.budget"), std::string::npos) << s.error_message();

  spec = Spec(3);
  spec.mutable_goal()->set_target_size(1.5);
  s = Submit(spec, &job);
  EXPECT_NE(s.error_message().find("spec.goal.target_size"), std::string::npos) << s.error_message();

  spec = Spec(3);
  spec.mutable_task()->set_name("imagenet");
  s = Submit(spec, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("imagenet"), std::string::npos) << s.error_message();

  spec = Spec(3);
  spec.set_search("simulated-annealing");
  s = Submit(spec, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("simulated-annealing"), std::string::npos);

  spec = Spec(3);
  spec.set_runtime("tensorrt");
  s = Submit(spec, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("spec.runtime 'tensorrt'"), std::string::npos) << s.error_message();

  spec = Spec(3);
  spec.mutable_model_files(1)->set_sha256(std::string(64, 'a'));
  s = Submit(spec, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("was not uploaded"), std::string::npos) << s.error_message();
}

TEST_F(CoordinatorTest, AJobGoesOnlyToWorkersWithItsRuntimeAndSaysWhyItWaits) {
  // Each worker records the runtimes of the tasks it got.
  std::mutex mu;
  std::map<std::string, std::vector<std::string>> seen;  // worker -> task runtimes
  auto recording = [&](const std::string& worker) {
    return [&, worker](const v1::Task& task, v1::WorkerPool::Stub* stub) {
      {
        std::lock_guard<std::mutex> lock(mu);
        seen[worker].push_back(task.runtime());
      }
      return SyntheticResult(task, stub);
    };
  };
  AddWorker(2, recording("libtorch-only"));  // advertises nothing: libtorch
  v1::Job onnx_job, torch_job;
  v1::JobSpec spec = Spec(4);
  spec.set_runtime("onnxruntime");
  ASSERT_TRUE(Submit(spec, &onnx_job).ok());
  EXPECT_EQ(onnx_job.spec().runtime(), "onnxruntime");
  v1::JobSpec default_spec = Spec(3);
  ASSERT_TRUE(Submit(default_spec, &torch_job).ok());
  EXPECT_EQ(torch_job.spec().runtime(), "libtorch") << "an empty runtime is stored as the default";

  // The onnxruntime job says why it waits, and the gauge counts it; the libtorch job behind it in
  // the queue is not held up.
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::WatchJobRequest request;
    request.set_id(onnx_job.id());
    auto reader = stub_->WatchJob(&context, request);
    v1::JobEvent event;
    while (reader->Read(&event) && event.job().waiting().empty()) {
    }
    EXPECT_NE(event.job().waiting().find("waiting for a worker with runtime onnxruntime"), std::string::npos)
        << event.job().DebugString();
    context.TryCancel();
  }
  EXPECT_EQ(Metric("shrink_jobs_waiting_for_runtime{runtime=\"onnxruntime\"}"), 1);
  EXPECT_EQ(Metric("shrink_workers_by_runtime{runtime=\"libtorch\"}"), 1);
  EXPECT_EQ(Metric("shrink_workers_by_runtime{runtime=\"onnxruntime\"}"), 0);
  EXPECT_EQ(WatchToEnd(torch_job.id()).state(), v1::SUCCEEDED);

  // A worker with the runtime connects: the waiting job runs, on it alone.
  AddWorker(1, recording("onnxruntime"), {"onnxruntime"});
  v1::Job done = WatchToEnd(onnx_job.id());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  EXPECT_EQ(done.waiting(), "");
  EXPECT_EQ(Metric("shrink_jobs_waiting_for_runtime{runtime=\"onnxruntime\"}"), 0);
  EXPECT_EQ(Metric("shrink_workers_by_runtime{runtime=\"onnxruntime\"}"), 1);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(seen["onnxruntime"].size(), 6u) << "describe, 4 candidates, finalize";
  for (const std::string& runtime : seen["onnxruntime"]) EXPECT_EQ(runtime, "onnxruntime");
  EXPECT_EQ(seen["libtorch-only"].size(), 5u) << "only the libtorch job's describe, 3 candidates, finalize";
  for (const std::string& runtime : seen["libtorch-only"]) EXPECT_EQ(runtime, "libtorch");
}

TEST_F(CoordinatorTest, TasksThatFailOnAWorkerWithABrokenRuntimeAreRetriedOnAnother) {
  // One onnxruntime worker's runner is dead: each task it gets fails; its retry waits for the
  // healthy worker, even while that one is busy, so every candidate still succeeds.
  std::mutex mu;
  std::map<std::string, std::string> failed_by_task;  // task id -> the broken worker's error
  std::vector<std::string> healthy_tasks;
  AddWorker(
      1,
      [&](const v1::Task& task, v1::WorkerPool::Stub*) {
        v1::TaskResult result;
        result.set_task_id(task.task_id());
        result.set_ok(false);
        result.set_error("the ONNX Runtime runner exited (signal 9)");
        std::lock_guard<std::mutex> lock(mu);
        failed_by_task[task.task_id()] = result.error();
        return result;
      },
      {"onnxruntime"});
  AddWorker(
      1,
      [&](const v1::Task& task, v1::WorkerPool::Stub* stub) {
        {
          std::lock_guard<std::mutex> lock(mu);
          healthy_tasks.push_back(task.task_id());
        }
        return SyntheticResult(task, stub);
      },
      {"libtorch", "onnxruntime"});
  v1::JobSpec spec = Spec(6);
  spec.set_runtime("onnxruntime");
  v1::Job job;
  ASSERT_TRUE(Submit(spec, &job).ok());
  v1::Job done = WatchToEnd(job.id());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  EXPECT_EQ(done.failed(), 0);
  for (const auto& c : Candidates(job.id())) EXPECT_EQ(c.outcome(), "ok") << c.error();
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_GE(failed_by_task.size(), 1u) << "the broken worker took work";
  for (const auto& [task_id, error] : failed_by_task) {
    EXPECT_EQ(std::count(healthy_tasks.begin(), healthy_tasks.end(), task_id), 1) << task_id << " was not retried elsewhere";
  }
}

TEST_F(CoordinatorTest, ExpiredLeaseRequeuesTheCandidateElsewhere) {
  TearDown();
  dir_ = *MakeTempDir("coordinator-test-");
  StartServer(absl::Milliseconds(300));
  // The first worker takes the first evaluation and never answers it.
  std::atomic<bool> hung{false};
  AddWorker(1, [&](const v1::Task& task, v1::WorkerPool::Stub* stub) {
    if (task.kind() == v1::Task::EVALUATE && !hung.exchange(true)) return v1::TaskResult();
    return SyntheticResult(task, stub);
  });
  AddWorker(1);
  v1::Job job;
  ASSERT_TRUE(Submit(Spec(4), &job).ok());
  v1::Job done = WatchToEnd(job.id());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  EXPECT_TRUE(hung.load());
  EXPECT_EQ(done.evaluated(), 4);
  EXPECT_EQ(done.failed(), 0);
  EXPECT_EQ(Candidates(job.id()).size(), 4u);
}

// A task that outlives its lease on the only worker (a long final distillation on a busy
// machine): the lease expiry marks the worker unresponsive and re-queues the task, and nobody
// else can take it. The late answer must still count, and must make the worker usable again,
// or the job waits forever.
TEST_F(CoordinatorTest, ALateAnswerToAnExpiredLeaseCompletesTheJob) {
  TearDown();
  dir_ = *MakeTempDir("coordinator-test-");
  StartServer(absl::Milliseconds(200));
  std::atomic<int> finalizes{0};
  AddWorker(1, [&](const v1::Task& task, v1::WorkerPool::Stub* stub) {
    // Slower than the lease (checked every 20 ms), as a real finalize can be: not synchronisation.
    if (task.kind() == v1::Task::FINALIZE && finalizes.fetch_add(1) == 0) absl::SleepFor(absl::Seconds(1));
    return SyntheticResult(task, stub);
  });
  v1::Job job;
  ASSERT_TRUE(Submit(Spec(3), &job).ok());
  v1::Job done = WatchToEnd(job.id());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  EXPECT_EQ(done.evaluated(), 3);
  EXPECT_EQ(finalizes.load(), 1) << "the late result was taken, not computed again";
  EXPECT_GT(done.artifact_files_size(), 0);
}

TEST_F(CoordinatorTest, DisconnectedWorkerTasksGoBackToTheQueue) {
  AddWorker(1, [](const v1::Task& task, v1::WorkerPool::Stub* stub) {
    if (task.kind() == v1::Task::EVALUATE) return v1::TaskResult();  // holds it, then dies
    return SyntheticResult(task, stub);
  });
  v1::Job job;
  ASSERT_TRUE(Submit(Spec(3), &job).ok());
  while (workers_[0]->tasks_seen() < 2) std::this_thread::yield();  // describe + one evaluation taken
  workers_[0]->Stop();
  AddWorker(1);
  v1::Job done = WatchToEnd(job.id());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  EXPECT_EQ(done.evaluated(), 3);
  EXPECT_EQ(done.failed(), 0);
}

TEST_F(CoordinatorTest, FailingEvaluationsAreRecordedAndAllFailingFailsTheJob) {
  AddWorker(1, [](const v1::Task& task, v1::WorkerPool::Stub* stub) {
    if (task.kind() != v1::Task::EVALUATE) return SyntheticResult(task, stub);
    v1::TaskResult r;
    r.set_task_id(task.task_id());
    r.set_ok(false);
    r.set_error("pass threw: out of memory");
    return r;
  });
  v1::Job job;
  ASSERT_TRUE(Submit(Spec(3), &job).ok());
  v1::Job done = WatchToEnd(job.id());
  EXPECT_EQ(done.state(), v1::FAILED);
  EXPECT_EQ(done.failed(), 3);
  EXPECT_NE(done.error().find("out of memory"), std::string::npos) << done.error();
  for (const auto& c : Candidates(job.id())) EXPECT_EQ(c.error(), "pass threw: out of memory");
}

TEST_F(CoordinatorTest, CancelRecallsInFlightWorkAndEndsTheJob) {
  AddWorker(1, [](const v1::Task& task, v1::WorkerPool::Stub* stub) {
    if (task.kind() == v1::Task::EVALUATE) return v1::TaskResult();  // never finishes
    return SyntheticResult(task, stub);
  });
  v1::Job job;
  ASSERT_TRUE(Submit(Spec(50), &job).ok());
  while (workers_[0]->tasks_seen() < 2) std::this_thread::yield();
  grpc::ClientContext context;
  v1::CancelJobRequest request;
  request.set_id(job.id());
  v1::Job cancelled;
  ASSERT_TRUE(stub_->CancelJob(&context, request, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), v1::CANCELLED);
  EXPECT_EQ(WatchToEnd(job.id()).state(), v1::CANCELLED);
}

TEST_F(CoordinatorTest, RestartedCoordinatorResumesUnfinishedJobs) {
  // The worker answers two evaluations, then the coordinator goes away.
  v1::Job job = SubmitAndStopAfterTwoResults(Spec(6));
  RestartAndFinish(job, 6);
}

// The agent checkpoint the coordinator stored for a job (read through a
// second connection to the state database).
std::string StoredCheckpoint(const std::string& state_dir, const std::string& job_id) {
  auto store = server::JobStore::Open(state_dir + "/shrink.db");
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return "";
  auto bytes = (*store)->GetSearchState(job_id);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.ok() ? *bytes : "";
}

// A ddpg search over the fake workers' CNN for `spec`, restored or transferred.
std::unique_ptr<agent::Search> DdpgFor(const v1::JobSpec& spec, const std::string& init_state = "") {
  agent::SearchContext context;
  context.model = testing::CnnDescription();
  context.goal = spec.goal();
  context.budget = spec.budget();
  context.seed = spec.seed();
  context.init_state = init_state;
  auto search = agent::MakeSearch("ddpg", context);
  EXPECT_TRUE(search.ok()) << search.status();
  return search.ok() ? std::move(*search) : nullptr;
}

TEST_F(CoordinatorTest, RestartedCoordinatorContinuesDdpgFromItsCheckpoint) {
  v1::Job job = SubmitAndStopAfterTwoResults(Spec(6, "ddpg"));
  // Stored with the second result: networks, optimizer, replay buffer, RNG.
  std::string checkpoint = StoredCheckpoint(dir_ + "/state", job.id());
  ASSERT_FALSE(checkpoint.empty());
  auto probe = DdpgFor(job.spec());
  ASSERT_TRUE(probe->RestoreState(checkpoint).ok());
  EXPECT_EQ(probe->proposals(), 2);

  std::set<int64_t> ids = RestartAndFinish(job, 6);
  // The recorded candidates before the restart are the first two proposals.
  EXPECT_TRUE(ids.count(0) && ids.count(1));
  auto final_state = DdpgFor(job.spec());
  ASSERT_TRUE(final_state->RestoreState(StoredCheckpoint(dir_ + "/state", job.id())).ok());
  EXPECT_GE(final_state->proposals(), 6) << "the search went on from the checkpoint";
}

TEST_F(CoordinatorTest, RestartedCoordinatorReplaysResultsWhenTheCheckpointIsFromAnOlderAgent) {
  // A job checkpointed by an agent of the older action scale (v1) and resumed after an
  // upgrade: the checkpoint is refused, the recorded results are replayed into a fresh
  // agent, and the job finishes without losing or repeating a candidate.
  v1::Job job = SubmitAndStopAfterTwoResults(Spec(6, "ddpg"));
  std::string checkpoint = StoredCheckpoint(dir_ + "/state", job.id());
  const std::string v2 = "shrink-ddpg-search-v2\n";
  ASSERT_EQ(checkpoint.compare(0, v2.size(), v2), 0);
  checkpoint.replace(0, v2.size(), "shrink-ddpg-search-v1\n");
  {
    auto store = server::JobStore::Open(dir_ + "/state/shrink.db");
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->PutSearchState(job.id(), checkpoint).ok());
  }

  RestartAndFinish(job, 6);
  auto final_state = DdpgFor(job.spec());
  ASSERT_TRUE(final_state->RestoreState(StoredCheckpoint(dir_ + "/state", job.id())).ok())
      << "the replayed agent checkpoints at the current version";
}

TEST_F(CoordinatorTest, InitAgentStartsDdpgFromAnotherJobsCheckpoint) {
  AddWorker(2);
  v1::Job source;
  ASSERT_TRUE(Submit(Spec(6, "ddpg"), &source).ok());
  ASSERT_EQ(WatchToEnd(source.id()).state(), v1::SUCCEEDED);
  std::string checkpoint = StoredCheckpoint(dir_ + "/state", source.id());
  ASSERT_FALSE(checkpoint.empty());

  v1::JobSpec spec = Spec(3, "ddpg");
  spec.set_seed(7);
  spec.set_max_in_flight(1);
  spec.set_init_agent(source.id());
  v1::Job job;
  ASSERT_TRUE(Submit(spec, &job).ok());
  ASSERT_EQ(WatchToEnd(job.id()).state(), v1::SUCCEEDED);
  auto candidates = Candidates(job.id());
  ASSERT_EQ(candidates.size(), 3u);
  // The first proposal is the transferred actor's (no random warm-up), which
  // a fresh agent with the same seed would not have made.
  v1::Policy expected = DdpgFor(spec, checkpoint)->Propose();
  v1::Policy fresh = DdpgFor(spec)->Propose();
  using google::protobuf::util::MessageDifferencer;
  EXPECT_TRUE(MessageDifferencer::Equals(candidates[0].policy(), expected));
  EXPECT_FALSE(MessageDifferencer::Equals(candidates[0].policy(), fresh));
}

TEST_F(CoordinatorTest, InitAgentIsRefusedNamingTheField) {
  AddWorker(2);
  v1::Job random_job;
  ASSERT_TRUE(Submit(Spec(2, "random"), &random_job).ok());
  ASSERT_EQ(WatchToEnd(random_job.id()).state(), v1::SUCCEEDED);

  v1::JobSpec spec = Spec(2, "random");
  spec.set_init_agent(random_job.id());
  v1::Job job;
  grpc::Status status = Submit(spec, &job);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("spec.init_agent"), std::string::npos) << status.error_message();

  spec.set_search("ddpg");
  status = Submit(spec, &job);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_NE(status.error_message().find("not a finished ddpg job"), std::string::npos);

  spec.set_init_agent("job-nonexistent");
  status = Submit(spec, &job);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
}

// A task that runs far longer than the lease (a long finalize) is kept while its
// worker heartbeats: not re-dispatched, no lease_expired, and its result counts.
TEST_F(CoordinatorTest, HeartbeatsKeepALongTaskPastItsLease) {
  v1::Job job;
  const int holder = HoldOneTaskOnTwoWorkers(absl::Seconds(1), absl::Hours(1), &job);
  ASSERT_GE(holder, 0);
  StartHeartbeats(holder, {held_.task.task_id()}, absl::Milliseconds(100));
  // 3.5 leases go by: the idle other worker would get the task if its lease ended.
  EXPECT_FALSE(WaitForRedispatch(absl::Milliseconds(3500)));
  StopHeartbeats();
  EXPECT_EQ(Metric(kLeaseExpired), 0);
  EXPECT_GE(Metric("shrink_worker_heartbeats_total"), 10);
  v1::WorkerMessage late;
  *late.mutable_result() = SyntheticResult(held_.task, nullptr);
  ASSERT_TRUE(workers_[holder]->Send(late));
  v1::Job done = WatchToEnd(job.id());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  EXPECT_EQ(done.evaluated(), 1);
  EXPECT_EQ(done.failed(), 0);
  EXPECT_EQ(Metric(kLeaseExpired), 0);
}

// The same worker falls silent (hung, still connected): one lease after its last
// heartbeat the task goes to the other worker.
TEST_F(CoordinatorTest, ATaskWhoseHeartbeatsStopIsRequeued) {
  v1::Job job;
  const int holder = HoldOneTaskOnTwoWorkers(absl::Seconds(1), absl::Hours(1), &job);
  ASSERT_GE(holder, 0);
  StartHeartbeats(holder, {held_.task.task_id()}, absl::Milliseconds(100));
  EXPECT_FALSE(WaitForRedispatch(absl::Milliseconds(1500))) << "re-dispatched while heartbeating";
  const absl::Time silent_since = StopHeartbeats();
  ASSERT_TRUE(WaitForRedispatch(absl::Seconds(30)));
  {
    std::lock_guard<std::mutex> lock(held_.mu);
    EXPECT_EQ(held_.again, std::vector<int>{1 - holder});
    EXPECT_GE(held_.again_at, silent_since);
  }
  v1::Job done = WatchToEnd(job.id());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  EXPECT_EQ(done.evaluated(), 1);
  EXPECT_EQ(Metric(kLeaseExpired), 1);
}

// A task thread deadlocked inside a live worker: heartbeats keep coming, but
// never keep the task past max_task after its dispatch.
TEST_F(CoordinatorTest, MaxTaskRequeuesATaskDespiteHeartbeats) {
  constexpr absl::Duration kMaxTask = absl::Milliseconds(2500);
  const absl::Time submitted = absl::Now();  // before the dispatch
  v1::Job job;
  const int holder = HoldOneTaskOnTwoWorkers(absl::Seconds(1), kMaxTask, &job);
  ASSERT_GE(holder, 0);
  StartHeartbeats(holder, {held_.task.task_id()}, absl::Milliseconds(100));
  ASSERT_TRUE(WaitForRedispatch(absl::Seconds(30)));
  {
    std::lock_guard<std::mutex> lock(held_.mu);
    EXPECT_EQ(held_.again, std::vector<int>{1 - holder});
    EXPECT_GE(held_.again_at - submitted, kMaxTask) << "re-dispatched before max_task";
  }
  v1::Job done = WatchToEnd(job.id());
  StopHeartbeats();
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  EXPECT_EQ(done.evaluated(), 1);
  EXPECT_EQ(Metric(kLeaseExpired), 1);
}

// Only the worker a task is dispatched to can renew its lease: another worker
// naming it (a confused or stale worker) changes nothing, and is not an error.
TEST_F(CoordinatorTest, HeartbeatsForAnotherWorkersTaskDoNotExtendIt) {
  const absl::Time submitted = absl::Now();
  v1::Job job;
  const int holder = HoldOneTaskOnTwoWorkers(absl::Seconds(1), absl::Hours(1), &job);
  ASSERT_GE(holder, 0);
  StartHeartbeats(1 - holder, {held_.task.task_id(), "no-such-task"}, absl::Milliseconds(100));
  ASSERT_TRUE(WaitForRedispatch(absl::Seconds(30)));
  const absl::Time redispatched = [&] {
    std::lock_guard<std::mutex> lock(held_.mu);
    return held_.again_at;
  }();
  StopHeartbeats();
  EXPECT_LT(redispatched - submitted, absl::Seconds(20)) << "far beyond the 1 s lease";
  EXPECT_GE(Metric("shrink_worker_heartbeats_total"), 1);
  v1::Job done = WatchToEnd(job.id());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  EXPECT_EQ(Metric(kLeaseExpired), 1);
}

// A heartbeat is an answer: a worker whose lease expired (stopped, cut off) gets
// work again once it heartbeats, as it would with a late result.
TEST_F(CoordinatorTest, AHeartbeatMakesAnUnresponsiveWorkerTakeWorkAgain) {
  TearDown();
  dir_ = *MakeTempDir("coordinator-test-");
  StartServer(absl::Milliseconds(300));
  AddWorker(1, HoldFirstEvaluation(0));  // the only worker: nobody else can take the task
  v1::Job job;
  ASSERT_TRUE(Submit(Spec(1), &job).ok());
  ASSERT_EQ(WaitForHeldTask(), 0);
  // Its lease expires: the worker is marked unresponsive and the task waits in the queue.
  ASSERT_TRUE(WaitForMetric(kLeaseExpired, 1, absl::Seconds(30)));
  EXPECT_FALSE(WaitForRedispatch(absl::Milliseconds(500))) << "an unresponsive worker got work";
  ASSERT_TRUE(workers_[0]->Heartbeat({held_.task.task_id()}));
  ASSERT_TRUE(WaitForRedispatch(absl::Seconds(30)));
  v1::Job done = WatchToEnd(job.id());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  EXPECT_EQ(done.evaluated(), 1);
}

}  // namespace
}  // namespace shrink
