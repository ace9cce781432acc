#include "common/server_credentials.h"

#include <grpcpp/security/server_credentials.h>

#include "absl/strings/str_cat.h"
#include "common/pem.h"
#include "common/status.h"

namespace shrink {
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerTlsOptions& options) {
  if (options.cert.empty() != options.key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (options.cert.empty()) {
    if (!options.client_ca.empty()) return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert");
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions ssl(
      options.client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  SHRINK_ASSIGN_OR_RETURN(pair.cert_chain, ReadPem(options.cert, "--tls-cert"));
  SHRINK_ASSIGN_OR_RETURN(pair.private_key, ReadPem(options.key, "--tls-key"));
  ssl.pem_key_cert_pairs.push_back(pair);
  if (!options.client_ca.empty()) {
    SHRINK_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem(options.client_ca, "--tls-client-ca"));
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace shrink
