// The `shrink` command line: --help, --version, and every command by name. Both
// binaries run it: `shrink` (torch-free) hands the commands that need LibTorch to
// shrink-torch beside it; shrink-torch runs them in its own process.
#pragma once

namespace shrink::client {

// Runs a command that needs the local runtime; gets the whole command line (argv[1] is
// the command) and returns its exit code.
using LocalCommandRunner = int (*)(int argc, char** argv);

// Runs the `shrink` command line `argv` and returns the exit code (0 ok, 2 usage, 1 failure):
// remote commands in this process, the local ones (and compress without --coordinator) by `run_local`.
int RunCli(int argc, char** argv, LocalCommandRunner run_local);

}  // namespace shrink::client
