// shrink-torch: the `shrink` command line with the commands that need LibTorch
// (train, eval, init, apply, demo, compress without --coordinator) in this process.
// `shrink` starts it for those; it answers every other command as `shrink` does.
#include <cstdlib>

#include "client/local/commands.h"
#include "client/remote/cli.h"
#include "common/log.h"

int main(int argc, char** argv) {
  shrink::InitLogging("shrink", /*verbose=*/std::getenv("SHRINK_VERBOSE") != nullptr);
  return shrink::client::RunCli(argc, argv, shrink::client::local::RunLocalCommand);
}
