// Client channels to the coordinator: keepalive, message limits, and the
// transport security a client or worker was configured with.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/channel.h>

#include "absl/status/statusor.h"

namespace shrink {

// Keepalive and message limits shared by every channel and server.
inline constexpr int kKeepaliveTimeMs = 20000;
inline constexpr int kKeepaliveTimeoutMs = 10000;
inline constexpr int kMaxMessageBytes = 16 << 20;

// How a channel authenticates the coordinator and itself. All empty = plaintext.
struct ChannelOptions {
  std::string tls_ca;    // PEM file of the CA that signed the coordinator's certificate; empty = no TLS
  std::string tls_cert;  // PEM client certificate (workers under mutual TLS); needs tls_ca
  std::string tls_key;   // its private key
  std::string token;     // bearer token sent with every call (clients); needs tls_ca
};

// Checks the combination and reads the PEM files (errors name the flag).
absl::Status ValidateChannelOptions(const ChannelOptions& options);

// A channel to "host:port". `own_connection` gives it its own TCP connection
// instead of sharing one with other channels to the same address (so one
// process can stand in for many workers).
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeCoordinatorChannel(const std::string& address,
                                                                      const ChannelOptions& options,
                                                                      bool own_connection = false);

// A plaintext channel to "host:port" (embedded mode, tests).
std::shared_ptr<grpc::Channel> MakeCoordinatorChannel(const std::string& address);

}  // namespace shrink
