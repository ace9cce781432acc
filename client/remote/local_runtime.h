// How the torch-free `shrink` runs the commands that need LibTorch: by starting
// shrink-torch, installed beside it, on the same command line.
#pragma once

#include <string>

namespace shrink::client {

// The file name of the binary that runs the local commands (train, eval, embedded compress, ...).
inline constexpr char kLocalRuntimeBinary[] = "shrink-torch";

// The shrink-torch beside the running binary (the folder of /proc/self/exe); "" if that cannot be read.
std::string LocalRuntimePath();

// Runs the command line `argv` (argv[1] the command) in shrink-torch and returns its exit code
// (a signal that ends it ends this process too). When shrink-torch is missing or cannot start,
// prints an error naming the command and that it needs the local runtime, and returns 1.
int RunInLocalRuntime(int argc, char** argv);

}  // namespace shrink::client
