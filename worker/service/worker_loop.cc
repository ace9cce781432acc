#include "worker/service/worker_loop.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "absl/strings/str_join.h"
#include "common/api_names.h"
#include "common/log.h"
#include "common/runtimes.h"
#include "worker/runtime/available_runtimes.h"

namespace shrink::worker {

struct WorkerLoop::Session {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<v1::WorkerMessage, v1::CoordinatorMessage>> stream;
  std::mutex write_mu;  // one writer at a time on a gRPC stream (results and heartbeats)
  bool open = true;     // guarded by write_mu
  // Tasks received on this stream and not answered yet (queued or running);
  // guarded by WorkerLoop::mu_. Heartbeats list them.
  std::set<std::string> tasks;

  // Sends a message; false once the stream is gone (the coordinator requeues).
  bool Send(const v1::WorkerMessage& message) {
    std::lock_guard<std::mutex> lock(write_mu);
    if (!open) return false;
    open = stream->Write(message);
    return open;
  }
  void Close() {
    std::lock_guard<std::mutex> lock(write_mu);
    open = false;
  }
};

namespace {
EvalOptions EvalOptionsFor(const WorkerOptions& options) {
  EvalOptions eval;
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  eval.threads = options.threads > 0 ? options.threads : std::max(1, cores / std::max(1, options.slots));
  return eval;
}
}  // namespace

WorkerLoop::WorkerLoop(std::shared_ptr<grpc::Channel> channel, WorkerOptions options,
                       WorkerMetrics* metrics)
    : channel_(std::move(channel)),
      stub_(v1::WorkerPool::NewStub(channel_)),
      options_(std::move(options)),
      metrics_(metrics),
      cache_(options_.cache_dir + "/blobs", metrics),
      runner_(&cache_, EvalOptionsFor(options_), options_.cache_dir, options_.device) {
  runtimes_ = options_.runtimes;
  if (runtimes_.empty()) {
    runtimes_ = options_.simulate_seconds >= 0 ? std::vector<std::string>{kRuntimeLibTorch}
                                              : ResolveRuntimes({}).value_or(std::vector<std::string>{kRuntimeLibTorch});
  }
  SHRINK_LOG(INFO) << options_.name << ": runtimes " << absl::StrJoin(runtimes_, ", ");
  if (options_.simulate_seconds >= 0) {
    simulator_ = std::make_unique<SimulatedRunner>(
        SimulateOptions{options_.simulate_seconds, options_.simulate_fail_rate}, options_.cache_dir + "/simulated");
  }
  int slots = std::max(1, options_.slots);
  for (int i = 0; i < slots; ++i) slots_.emplace_back([this] { SlotLoop(); });
  if (options_.heartbeat_seconds > 0) heartbeat_ = std::thread([this] { HeartbeatLoop(); });
  UpdateSlotMetrics();
}

WorkerLoop::~WorkerLoop() {
  Stop();
  for (auto& t : slots_) t.join();
  if (heartbeat_.joinable()) heartbeat_.join();
}

void WorkerLoop::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = true;
  if (session_) session_->context.TryCancel();
  cv_.notify_all();
  heartbeat_cv_.notify_all();
}

void WorkerLoop::Run() {
  auto backoff = std::chrono::milliseconds(100);
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    grpc::ClientContext register_context;
    register_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    register_context.set_wait_for_ready(true);
    v1::RegisterWorkerRequest request;
    request.set_name(options_.name);
    request.set_slots(std::max(1, options_.slots));
    request.set_device(options_.device);
    request.set_threads(EvalOptionsFor(options_).threads);
    for (const std::string& name : runtimes_) request.add_runtimes(name);
    v1::RegisterWorkerResponse response;
    grpc::Status status = stub_->RegisterWorker(&register_context, request, &response);
    if (status.ok()) {
      auto session = std::make_shared<Session>();
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
        session_ = session;
      }
      session->stream = stub_->TaskStream(&session->context);
      v1::WorkerMessage hello;
      hello.mutable_hello()->set_worker_id(response.worker_id());
      if (session->Send(hello)) {
        SHRINK_LOG(INFO) << "connected as " << response.worker_id();
        backoff = std::chrono::milliseconds(100);
        if (metrics_) metrics_->SetConnected(true);
        Serve(session);  // returns once the stream is done: Finish() won't block
        if (metrics_) metrics_->SetConnected(false);
      } else {
        session->context.TryCancel();
      }
      session->Close();
      grpc::Status finished = session->stream->Finish();
      std::lock_guard<std::mutex> lock(mu_);
      if (session_ == session) session_.reset();
      if (stopping_) return;
      SHRINK_LOG(WARNING) << "task stream ended (" << finished.error_message() << "); reconnecting";
    } else {
      SHRINK_LOG(WARNING) << "cannot register with the coordinator: " << status.error_message();
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, backoff, [this] { return stopping_; });
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

void WorkerLoop::Serve(const std::shared_ptr<Session>& session) {
  v1::CoordinatorMessage message;
  while (session->stream->Read(&message)) {
    std::lock_guard<std::mutex> lock(mu_);
    if (message.has_task()) {
      session->tasks.insert(message.task().task_id());
      queue_.push_back({message.task(), session});
      cv_.notify_one();
    } else if (message.has_cancel()) {
      const std::string& id = message.cancel().task_id();
      // A running task stops at its next check; its slot takes the next task.
      if (auto it = running_.find(id); it != running_.end()) it->second->store(true);
      // Remembered only while the task is this stream's, queued or running: a cancel that
      // crossed the task's result on the wire would otherwise stay in the set for good.
      if (session->tasks.count(id) > 0) cancelled_.insert(id);
    }
  }
}

void WorkerLoop::SlotLoop() {
  while (true) {
    Work work;
    auto recalled = std::make_shared<RecallFlag>(false);
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      work = std::move(queue_.front());
      queue_.pop_front();
      if (cancelled_.erase(work.task.task_id()) > 0) {
        work.session->tasks.erase(work.task.task_id());
        continue;
      }
      ++busy_;
      running_[work.task.task_id()] = recalled;
    }
    UpdateSlotMetrics();
    v1::TaskResult result = simulator_ ? simulator_->Run(work.task, stub_.get(), recalled.get())
                                       : runner_.Run(work.task, stub_.get(), recalled.get());
    const char* kind = TaskKindName(work.task.kind());
    const bool was_recalled = recalled->load() && !result.ok();  // stopped by the recall, not finished
    const char* outcome = was_recalled ? "recalled" : result.ok() ? "ok" : "failed";
    if (was_recalled) {
      SHRINK_LOG(INFO) << "task " << work.task.task_id() << " recalled by the coordinator; stopped";
    } else if (!result.ok()) {
      SHRINK_LOG(WARNING) << "task " << work.task.task_id() << " failed: " << result.error();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      work.session->tasks.erase(work.task.task_id());  // answered: heartbeats stop naming it
      running_.erase(work.task.task_id());
      cancelled_.erase(work.task.task_id());  // no longer this stream's: later cancels are ignored
      --busy_;
    }
    // Slot freed, then counted, then sent: whoever sees the result or the count sees the slot back.
    UpdateSlotMetrics();
    if (metrics_) metrics_->TaskFinished(kind, outcome, result.seconds());
    // Stopped by the recall, it has no result; the coordinator has given the task up or back.
    if (!was_recalled) {
      v1::WorkerMessage message;
      *message.mutable_result() = std::move(result);
      work.session->Send(message);
    }
  }
}

void WorkerLoop::HeartbeatLoop() {
  const auto interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(options_.heartbeat_seconds));
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    heartbeat_cv_.wait_for(lock, interval, [this] { return stopping_; });
    if (stopping_) return;
    // Only the current stream's tasks: those of a broken one were re-queued when it closed.
    std::shared_ptr<Session> session = session_;
    if (!session) continue;
    v1::WorkerMessage message;
    for (const std::string& id : session->tasks) {
      // A recalled task may still run to its end, but its lease is not ours to renew.
      if (cancelled_.count(id) == 0) message.mutable_heartbeat()->add_task_ids(id);
    }
    if (!message.has_heartbeat()) continue;
    lock.unlock();
    session->Send(message);  // serialized with results by the session's write lock
    lock.lock();
  }
}

void WorkerLoop::UpdateSlotMetrics() {
  if (!metrics_) return;
  // Set under the lock: two slots finishing together cannot leave the older count last.
  std::lock_guard<std::mutex> lock(mu_);
  metrics_->SetSlots(std::max(1, options_.slots), busy_);
}

}  // namespace shrink::worker
