// shrink: the command-line client. `shrink help` lists the commands. This binary is
// torch-free: the commands that load models run in shrink-torch, installed beside it.
#include <cstdlib>

#include "client/remote/cli.h"
#include "client/remote/local_runtime.h"
#include "common/log.h"

int main(int argc, char** argv) {
  shrink::InitLogging("shrink", /*verbose=*/std::getenv("SHRINK_VERBOSE") != nullptr);
  return shrink::client::RunCli(argc, argv, shrink::client::RunInLocalRuntime);
}
