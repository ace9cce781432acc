#include "server/access.h"

#include <grpcpp/security/auth_context.h>

namespace shrink::server {

const Access& Access::Open() {
  static const Access* open = new Access(std::nullopt, false);
  return *open;
}

absl::StatusOr<std::string> Access::ClientTenant(const grpc::ServerContext& context) const {
  if (!tokens_) return std::string(kDefaultTenant);
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return absl::UnauthenticatedError("this coordinator needs a bearer token (--token or SHRINK_TOKEN)");
  }
  std::string_view header(it->second.data(), it->second.size());
  std::string_view token = BearerToken(header);
  if (token.empty()) return absl::UnauthenticatedError("authorization is not `Bearer TOKEN`");
  return tokens_->TenantOf(token);
}

absl::Status Access::CheckWorker(const grpc::ServerContext& context) const {
  if (!require_worker_certificate_) return absl::OkStatus();
  // With GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY a certificate that
  // does not verify fails the handshake; here we only learn whether one came.
  auto auth = context.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated() ||
      auth->FindPropertyValues("x509_pem_cert").empty()) {
    return absl::UnauthenticatedError("workers need a client certificate signed by the coordinator's --tls-client-ca");
  }
  return absl::OkStatus();
}

}  // namespace shrink::server
