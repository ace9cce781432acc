#include "client/local/embedded.h"

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status.h"
#include "worker/runtime/available_runtimes.h"

namespace shrink::client {

absl::StatusOr<std::unique_ptr<EmbeddedService>> EmbeddedService::Start(const EmbeddedOptions& options) {
  std::unique_ptr<EmbeddedService> s(new EmbeddedService());
  s->state_dir_ = options.state_dir;
  if (s->state_dir_.empty()) {
    SHRINK_ASSIGN_OR_RETURN(s->state_dir_, MakeTempDir("shrink-embedded-"));
    s->remove_state_ = true;
  }
  server::CoordinatorServerOptions server_options;
  server_options.coordinator.state_dir = absl::StrCat(s->state_dir_, "/coordinator");
  SHRINK_ASSIGN_OR_RETURN(s->server_, server::CoordinatorServer::Start(server_options));
  s->channel_ = s->server_->InProcessChannel();
  std::vector<std::string> runtimes;
  if (!options.runtimes.empty()) {
    SHRINK_ASSIGN_OR_RETURN(runtimes, worker::ResolveRuntimes(options.runtimes));
  }
  for (int i = 0; i < std::max(1, options.workers); ++i) {
    worker::WorkerOptions worker_options;
    worker_options.runtimes = runtimes;
    worker_options.name = absl::StrCat("embedded-", i);
    worker_options.slots = std::max(1, options.slots_per_worker);
    worker_options.threads = std::max(1, options.threads_per_task);
    worker_options.cache_dir = absl::StrCat(s->state_dir_, "/worker-", i);
    s->metrics_.push_back(std::make_unique<worker::WorkerMetrics>());
    s->workers_.push_back(std::make_unique<worker::WorkerLoop>(
        s->server_->InProcessChannel(), worker_options, s->metrics_.back().get()));
    worker::WorkerLoop* loop = s->workers_.back().get();
    s->threads_.emplace_back([loop] { loop->Run(); });
  }
  return s;
}

EmbeddedService::~EmbeddedService() {
  for (auto& w : workers_) w->Stop();
  if (server_) server_->Shutdown();
  for (auto& t : threads_) t.join();
  workers_.clear();
  server_.reset();
  if (remove_state_) RemoveAll(state_dir_);
}

}  // namespace shrink::client
