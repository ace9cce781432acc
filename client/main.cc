// shrink: the command-line client. `shrink help` lists the commands.
#include <cstring>
#include <iostream>
#include <string>

#include "client/commands.h"
#include "common/log.h"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* help;
};

const Command kCommands[] = {
    {"compress", shrink::client::RunCompress, "compress a model (embedded, or on --coordinator) and wait"},
    {"submit", shrink::client::RunSubmit, "submit a job file to a coordinator; prints the job id"},
    {"watch", shrink::client::RunWatch, "follow a job's progress until it ends"},
    {"status", shrink::client::RunStatus, "show one job"},
    {"list", shrink::client::RunList, "list jobs"},
    {"cancel", shrink::client::RunCancel, "cancel a job"},
    {"fetch", shrink::client::RunFetch, "download a finished job's compressed model"},
    {"report", shrink::client::RunReport, "write a job's HTML report with plots (--out FILE.html)"},
    {"health", shrink::client::RunHealth, "check a coordinator (gRPC health) or a worker (/healthz); for probes"},
    {"train", shrink::client::RunTrain, "train a reference model"},
    {"eval", shrink::client::RunEval, "measure a model: accuracy, bytes, latency"},
    {"init", shrink::client::RunInit, "write a randomly initialised model of a known shape (bert base, gpt2 small, ...)"},
    {"apply", shrink::client::RunApply, "apply one policy file to a model and measure the result"},
    {"demo", shrink::client::RunDemo, "train (once), compress the reference CNN with each search; print the table"},
};

void PrintHelp(std::ostream& out) {
  out << "usage: shrink COMMAND [flags]   (shrink COMMAND --help for its flags)\n\ncommands:\n";
  for (const auto& c : kCommands) out << "  " << c.name << std::string(10 - std::strlen(c.name), ' ') << c.help << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  shrink::InitLogging("shrink", /*verbose=*/std::getenv("SHRINK_VERBOSE") != nullptr);
  if (argc < 2) {
    PrintHelp(std::cerr);
    return 2;
  }
  std::string name = argv[1];
  if (name == "--help" || name == "help" || name == "-h") {
    PrintHelp(std::cout);
    return 0;
  }
  if (name == "--version" || name == "version") {
    std::cout << "shrink " << SHRINK_VERSION << "\n";
    return 0;
  }
  for (const auto& c : kCommands) {
    if (name == c.name) return c.run(argc - 2, argv + 2);
  }
  std::cerr << "shrink: unknown command '" << name << "'\n";
  PrintHelp(std::cerr);
  return 2;
}
