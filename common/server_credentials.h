// Transport security of the coordinator's gRPC port: TLS with its
// certificate, and optionally client certificates (mutual TLS for workers).
#pragma once

#include <memory>
#include <string>

#include <grpcpp/security/server_credentials.h>

#include "absl/status/statusor.h"

namespace shrink {

struct ServerTlsOptions {
  std::string cert;       // PEM certificate chain of the server; empty = plaintext
  std::string key;        // its private key
  std::string client_ca;  // PEM CA that signs worker certificates; empty = no client certificates
};

// Plaintext credentials when `options.cert` is empty; otherwise TLS. With a
// client CA, a presented client certificate must verify against it (the
// handshake fails otherwise); clients without one still connect, and the
// worker API refuses them (server/access.h). Errors name the flag.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerTlsOptions& options);

}  // namespace shrink
