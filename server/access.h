// Who may call the coordinator: clients by bearer token (each token names a
// tenant), workers by a client certificate verified under mutual TLS.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <grpcpp/server_context.h>

#include "absl/status/statusor.h"
#include "common/tokens.h"

namespace shrink::server {

// Immutable; thread-safe.
class Access {
 public:
  // No tokens = every client is tenant "default"; require_worker_certificate
  // = the worker API needs a verified client certificate.
  Access(std::optional<TokenTable> tokens, bool require_worker_certificate)
      : tokens_(std::move(tokens)), require_worker_certificate_(require_worker_certificate) {}
  // Anyone may call; everything belongs to "default" (embedded mode, plaintext).
  static const Access& Open();

  // The calling client's tenant, or Unauthenticated (missing or unknown token).
  absl::StatusOr<std::string> ClientTenant(const grpc::ServerContext& context) const;
  // Ok for a worker that presented a verified certificate (or when none is
  // required); Unauthenticated otherwise.
  absl::Status CheckWorker(const grpc::ServerContext& context) const;

 private:
  std::optional<TokenTable> tokens_;
  bool require_worker_certificate_;
};

}  // namespace shrink::server
