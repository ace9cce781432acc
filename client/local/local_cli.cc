// The commands shrink-torch runs, by name, and `shrink compress` on the embedded
// service (client/local/embedded.h).
#include <iostream>
#include <memory>
#include <string>

#include "client/local/commands.h"
#include "client/local/embedded.h"
#include "client/remote/commands.h"
#include "common/status.h"

namespace shrink::client::local {

int RunCompress(int argc, char** argv) {
  // Lives until the command returns, after its client and channel are gone.
  std::unique_ptr<EmbeddedService> embedded;
  return client::RunCompress(argc, argv,
                             [&embedded](const EmbeddedOptions& options) -> absl::StatusOr<std::shared_ptr<grpc::Channel>> {
                               SHRINK_ASSIGN_OR_RETURN(embedded, EmbeddedService::Start(options));
                               return embedded->channel();
                             });
}

int RunLocalCommand(int argc, char** argv) {
  struct Command {
    const char* name;
    int (*run)(int, char**);
  };
  static const Command kLocalCommands[] = {
      {"compress", RunCompress}, {"train", RunTrain}, {"pretrain", RunPretrain}, {"eval", RunEval},
      {"init", RunInit},         {"apply", RunApply}, {"demo", RunDemo},
      {"export", RunExport},     {"predict", RunPredict},
  };
  const std::string name = argc > 1 ? argv[1] : "";
  for (const auto& c : kLocalCommands) {
    if (name == c.name) return c.run(argc - 2, argv + 2);
  }
  std::cerr << "shrink: '" << name << "' is not a command of the local runtime\n";
  return 2;
}

}  // namespace shrink::client::local
