#include "tests/test_util/fake_worker.h"

#include "tests/test_util/cnn_description.h"

#include <gtest/gtest.h>

#include "common/blob_upload.h"
#include "common/files.h"
#include "common/policy.h"
#include "common/sha256.h"

namespace shrink::testing {

v1::TaskResult SyntheticResult(const v1::Task& task, v1::WorkerPool::Stub* stub) {
  v1::TaskResult r;
  r.set_task_id(task.task_id());
  r.set_ok(true);
  v1::Metrics base;
  base.set_accuracy(0.9);
  base.set_bytes(CnnDescription().bytes());
  base.set_latency_ms(10);
  base.set_split(task.kind() == v1::Task::FINALIZE ? "test" : "validation");
  if (task.kind() == v1::Task::DESCRIBE) {
    *r.mutable_description() = CnnDescription();
    *r.mutable_evaluation()->mutable_baseline() = base;
    return r;
  }
  double prune = 0, bytes_factor = 0;
  int n = 0;
  for (const auto& a : task.policy().layers()) {
    prune += a.prune();
    bytes_factor += EffectiveBits(a.bits()) / 32.0 * (1 - a.prune());
    ++n;
  }
  prune /= std::max(1, n);
  bytes_factor /= std::max(1, n);
  v1::Evaluation* e = r.mutable_evaluation();
  *e->mutable_baseline() = base;
  e->mutable_candidate()->set_accuracy(0.9 * (1 - 0.3 * prune));
  e->mutable_candidate()->set_bytes(static_cast<int64_t>(base.bytes() * bytes_factor));
  e->mutable_candidate()->set_latency_ms(10 * (1 - 0.5 * prune));
  e->mutable_candidate()->set_split(base.split());
  e->set_retention(1 - 0.3 * prune);
  e->set_size_ratio(bytes_factor);
  e->set_speedup(1 / (1 - 0.5 * prune));
  if (task.kind() == v1::Task::FINALIZE) {
    auto dir = *MakeTempDir("fake-artifact-");
    for (const char* name : {"config.json", "model.safetensors"}) {
      std::string path = dir + "/" + name;
      EXPECT_TRUE(WriteFileAtomic(path, std::string("fake ") + name + " for " + task.job_id()).ok());
      auto ref = DescribeFile(path, name);
      EXPECT_TRUE(UploadFile(stub, path, *ref).ok());
      *r.add_artifact_files() = *ref;
    }
    RemoveAll(dir);
  }
  return r;
}

FakeWorker::FakeWorker(std::shared_ptr<grpc::Channel> channel, int slots, Answer answer,
                       const std::vector<std::string>& runtimes)
    : stub_(v1::WorkerPool::NewStub(channel)), slots_(slots), answer_(std::move(answer)) {
  grpc::ClientContext register_context;
  v1::RegisterWorkerRequest request;
  request.set_name("fake");
  request.set_slots(slots_);
  for (const std::string& name : runtimes) request.add_runtimes(name);
  v1::RegisterWorkerResponse response;
  EXPECT_TRUE(stub_->RegisterWorker(&register_context, request, &response).ok());
  stream_ = stub_->TaskStream(&context_);
  v1::WorkerMessage hello;
  hello.mutable_hello()->set_worker_id(response.worker_id());
  EXPECT_TRUE(stream_->Write(hello));
  thread_ = std::thread([this] { Run(); });
}

FakeWorker::~FakeWorker() {
  Stop();
  thread_.join();
}

void FakeWorker::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return;
  stopped_ = true;
  context_.TryCancel();
}

int FakeWorker::tasks_seen() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tasks_seen_;
}

bool FakeWorker::Send(const v1::WorkerMessage& message) {
  std::lock_guard<std::mutex> lock(write_mu_);
  return !finished_ && stream_->Write(message);
}

bool FakeWorker::Heartbeat(const std::vector<std::string>& task_ids) {
  v1::WorkerMessage message;
  for (const auto& id : task_ids) message.mutable_heartbeat()->add_task_ids(id);
  message.mutable_heartbeat();  // present even when empty
  return Send(message);
}

void FakeWorker::Run() {
  // Tasks are answered in order on this thread; enough for the coordinator's logic.
  v1::CoordinatorMessage message;
  while (stream_->Read(&message)) {
    if (!message.has_task()) continue;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++tasks_seen_;
    }
    v1::TaskResult result = answer_(message.task(), stub_.get());
    if (result.task_id().empty()) continue;  // hung: never answers
    v1::WorkerMessage out;
    *out.mutable_result() = result;
    if (!Send(out)) break;
  }
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    finished_ = true;
  }
  stream_->Finish();
}

}  // namespace shrink::testing
