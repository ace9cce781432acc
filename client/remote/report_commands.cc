// Commands for operators and reports: `shrink report ID --out FILE.html` and
// `shrink health` (the containers' HEALTHCHECK: gRPC health of a coordinator, or a
// worker's /healthz).
#include <httplib.h>

#include <chrono>
#include <iostream>

#include <grpcpp/client_context.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/remote/command_util.h"
#include "client/remote/commands.h"
#include "client/remote/coordinator_client.h"
#include "client/remote/report_html.h"
#include "common/channel.h"
#include "common/files.h"
#include "common/metrics_http.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace shrink::client {
namespace {

const FlagSpec kCoordinator = {"coordinator", "coordinator HOST:PORT (env SHRINK_COORDINATOR)", "127.0.0.1:50051"};
const FlagSpec kHelp = {"help", "show this help", "", true};

std::string Coordinator(const Args& args) {
  if (args.Has("coordinator")) return args.Get("coordinator");
  if (const char* env = std::getenv("SHRINK_COORDINATOR")) return env;
  return args.Get("coordinator");
}

}  // namespace

int RunReport(int argc, char** argv) {
  const std::vector<FlagSpec> flags = {{"out", "HTML file to write (required)", ""}, kCoordinator, kTlsCaFlag,
                                       kTokenFlag, kHelp};
  const std::string synopsis = "shrink report ID --out FILE.html [--coordinator HOST:PORT]";
  SHRINK_PARSE_OR_EXIT(args, argc, argv, flags, synopsis);
  if (args->positionals().size() != 1) {
    return UsageError(absl::InvalidArgumentError("give exactly one job id"), synopsis, flags);
  }
  if (args->Get("out").empty()) return UsageError(absl::InvalidArgumentError("--out is required"), synopsis, flags);
  auto channel = ConnectToCoordinator(*args, Coordinator(*args));
  if (!channel.ok()) return Failure(channel.status());
  CoordinatorClient client(*channel);
  const std::string& id = args->positionals()[0];
  auto job = client.Get(id);
  if (!job.ok()) return Failure(job.status());
  auto candidates = client.Candidates(id);
  if (!candidates.ok()) return Failure(candidates.status());
  if (auto s = WriteFileAtomic(args->Get("out"), FormatHtmlReport(*job, *candidates)); !s.ok()) return Failure(s);
  std::cout << "wrote " << args->Get("out") << " (" << candidates->size() << " candidates)\n";
  return 0;
}

int RunHealth(int argc, char** argv) {
  const std::vector<FlagSpec> flags = {
      kCoordinator,
      {"metrics", "check a worker instead: GET http://HOST:PORT/healthz", ""},
      {"service", "gRPC service to ask about (empty = the whole server)", ""},
      {"timeout", "seconds to wait for the answer", "3"},
      kTlsCaFlag,
      kHelp,
  };
  const std::string synopsis = "shrink health [--coordinator HOST:PORT | --metrics HOST:PORT] [--service NAME]";
  SHRINK_PARSE_OR_EXIT(args, argc, argv, flags, synopsis);
  double timeout = 0;
  if (!absl::SimpleAtod(args->Get("timeout"), &timeout) || timeout <= 0) {
    return UsageError(absl::InvalidArgumentError("--timeout takes a positive number of seconds"), synopsis, flags);
  }
  if (!args->Get("metrics").empty()) {
    auto host_port = SplitHostPort(args->Get("metrics"));
    if (!host_port.ok()) return UsageError(host_port.status(), synopsis, flags);
    httplib::Client http(host_port->first, host_port->second);
    http.set_connection_timeout(std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000)));
    http.set_read_timeout(std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000)));
    auto response = http.Get("/healthz");
    if (!response || response->status != 200) {
      std::cerr << "shrink health: " << args->Get("metrics") << "/healthz: "
                << (response ? absl::StrCat("HTTP ", response->status) : httplib::to_string(response.error())) << "\n";
      return 1;
    }
    std::cout << "SERVING\n";
    return 0;
  }
  // The health service answers without a token, over TLS when --tls-ca is given.
  ChannelOptions secure;
  secure.tls_ca = args->Has("tls-ca") ? args->Get("tls-ca") : (std::getenv("SHRINK_TLS_CA") ? std::getenv("SHRINK_TLS_CA") : "");
  auto channel = MakeCoordinatorChannel(Coordinator(*args), secure);
  if (!channel.ok()) return Failure(channel.status());
  auto stub = grpc::health::v1::Health::NewStub(*channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000)));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(args->Get("service"));
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    std::cerr << "shrink health: " << Coordinator(*args) << ": " << status.error_message() << "\n";
    return 1;
  }
  std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()) << "\n";
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

}  // namespace shrink::client
