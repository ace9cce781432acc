#include "common/channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/str_cat.h"
#include "common/pem.h"
#include "common/status.h"

namespace shrink {
namespace {

grpc::ChannelArguments BaseArguments(bool own_connection) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  // Reconnect quickly after a coordinator restart.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  if (own_connection) args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return args;
}

}  // namespace

absl::Status ValidateChannelOptions(const ChannelOptions& options) {
  if (options.tls_ca.empty()) {
    if (!options.tls_cert.empty() || !options.tls_key.empty()) {
      return absl::InvalidArgumentError("--tls-cert and --tls-key need --tls-ca");
    }
    if (!options.token.empty()) {
      return absl::InvalidArgumentError("--token needs --tls-ca: tokens are never sent in plaintext");
    }
    return absl::OkStatus();
  }
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  SHRINK_RETURN_IF_ERROR(ReadPem(options.tls_ca, "--tls-ca").status());
  if (!options.tls_cert.empty()) {
    SHRINK_RETURN_IF_ERROR(ReadPem(options.tls_cert, "--tls-cert").status());
    SHRINK_RETURN_IF_ERROR(ReadPem(options.tls_key, "--tls-key").status());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeCoordinatorChannel(const std::string& address,
                                                                      const ChannelOptions& options,
                                                                      bool own_connection) {
  SHRINK_RETURN_IF_ERROR(ValidateChannelOptions(options));
  grpc::ChannelArguments args = BaseArguments(own_connection);
  if (options.tls_ca.empty()) {
    return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  }
  grpc::SslCredentialsOptions ssl;
  SHRINK_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem(options.tls_ca, "--tls-ca"));
  if (!options.tls_cert.empty()) {
    SHRINK_ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadPem(options.tls_cert, "--tls-cert"));
    SHRINK_ASSIGN_OR_RETURN(ssl.pem_private_key, ReadPem(options.tls_key, "--tls-key"));
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::SslCredentials(ssl);
  if (!options.token.empty()) {
    // "authorization: Bearer TOKEN" on every call; gRPC sends it only over TLS.
    credentials = grpc::CompositeChannelCredentials(credentials, grpc::AccessTokenCredentials(options.token));
  }
  return grpc::CreateCustomChannel(address, credentials, args);
}

std::shared_ptr<grpc::Channel> MakeCoordinatorChannel(const std::string& address) {
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), BaseArguments(false));
}

}  // namespace shrink
