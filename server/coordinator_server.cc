#include "server/coordinator_server.h"

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>

#include <optional>

#include "absl/strings/str_cat.h"
#include "common/channel.h"
#include "common/log.h"
#include "common/status.h"

namespace shrink::server {

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    const CoordinatorServerOptions& options) {
  if (!options.tokens_file.empty() && options.tls.cert.empty()) {
    return absl::InvalidArgumentError("--tokens needs --tls-cert and --tls-key: tokens are never accepted in plaintext");
  }
  SHRINK_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials, MakeServerCredentials(options.tls));
  std::optional<TokenTable> tokens;
  if (!options.tokens_file.empty()) {
    SHRINK_ASSIGN_OR_RETURN(tokens, TokenTable::Load(options.tokens_file));
  } else if (!options.tls.cert.empty()) {
    SHRINK_LOG(WARNING) << "TLS without --tokens: any client may submit jobs (tenant \"default\")";
  }
  if (!options.tls.cert.empty() && options.tls.client_ca.empty()) {
    SHRINK_LOG(WARNING) << "TLS without --tls-client-ca: any process may register as a worker";
  }
  std::unique_ptr<CoordinatorServer> s(new CoordinatorServer());
  s->access_ = std::make_unique<Access>(std::move(tokens), !options.tls.client_ca.empty());
  s->metrics_ = std::make_unique<CoordinatorMetrics>();
  SHRINK_ASSIGN_OR_RETURN(s->coordinator_, Coordinator::Create(options.coordinator, s->metrics_.get()));
  s->client_service_ = std::make_unique<CoordinatorService>(s->coordinator_.get(), s->access_.get());
  s->worker_service_ = std::make_unique<WorkerPoolService>(s->coordinator_.get(), s->access_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  if (!options.listen.empty()) {
    builder.AddListeningPort(options.listen, credentials, &s->port_);
  }
  builder.RegisterService(s->client_service_.get());
  builder.RegisterService(s->worker_service_.get());
  s->max_message_bytes_ = options.max_message_bytes > 0 ? options.max_message_bytes : kMaxMessageBytes;
  builder.SetMaxReceiveMessageSize(s->max_message_bytes_);
  builder.SetMaxSendMessageSize(s->max_message_bytes_);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Accept the clients' keepalive pings (they ping every kKeepaliveTimeMs).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, kKeepaliveTimeMs / 2);
  s->server_ = builder.BuildAndStart();
  if (!s->server_ || (!options.listen.empty() && s->port_ == 0)) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  // Per service, so probes can ask for either API by name ("" = the server).
  auto* health = s->server_->GetHealthCheckService();
  health->SetServingStatus("", true);
  health->SetServingStatus(v1::Coordinator::service_full_name(), true);
  health->SetServingStatus(v1::WorkerPool::service_full_name(), true);

  if (!options.metrics_listen.empty()) {
    s->metrics_http_ = std::make_unique<MetricsHttpServer>(s->metrics_->registry());
    SHRINK_ASSIGN_OR_RETURN(s->metrics_port_, s->metrics_http_->Start(options.metrics_listen));
  }
  return s;
}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

std::shared_ptr<grpc::Channel> CoordinatorServer::InProcessChannel() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(max_message_bytes_);
  return server_->InProcessChannel(args);
}

void CoordinatorServer::Wait() { server_->Wait(); }

void CoordinatorServer::Shutdown() {
  // Held throughout, so a second caller returns only once the server is down.
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return;
  stopped_ = true;
  if (server_) server_->GetHealthCheckService()->SetServingStatus(false);
  // Wake long-lived streams first so the server drains quickly.
  if (coordinator_) coordinator_->Shutdown();
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (metrics_http_) metrics_http_->Stop();
}

}  // namespace shrink::server
