// Client channels to the coordinator, with keepalive set to match the server.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/channel.h>

namespace shrink {

// Keepalive and message limits shared by every channel and server.
inline constexpr int kKeepaliveTimeMs = 20000;
inline constexpr int kKeepaliveTimeoutMs = 10000;
inline constexpr int kMaxMessageBytes = 16 << 20;

// An insecure channel to "host:port" (TLS arrives with the security issue).
std::shared_ptr<grpc::Channel> MakeCoordinatorChannel(const std::string& address);

}  // namespace shrink
