#include "client/remote/cli.h"

#include <cstring>
#include <iostream>
#include <string>

#include "client/remote/commands.h"

namespace shrink::client {
namespace {

// `shrink compress` on --coordinator; the embedded case goes to the local runtime first.
int RunRemoteCompress(int argc, char** argv) { return RunCompress(argc, argv, nullptr); }

// Commands that need the local runtime always.
bool Always(int, char**) { return true; }

struct Command {
  const char* name;
  int (*run)(int, char**);            // the torch-free implementation; null = local only
  bool (*runs_locally)(int, char**);  // null = never: the command is remote
  const char* help;
};

const Command kCommands[] = {
    {"compress", RunRemoteCompress, CompressRunsEmbedded, "compress a model (embedded, or on --coordinator) and wait"},
    {"submit", RunSubmit, nullptr, "submit a job file to a coordinator; prints the job id"},
    {"watch", RunWatch, nullptr, "follow a job's progress until it ends"},
    {"status", RunStatus, nullptr, "show one job"},
    {"list", RunList, nullptr, "list jobs"},
    {"cancel", RunCancel, nullptr, "cancel a job"},
    {"fetch", RunFetch, nullptr, "download a finished job's compressed model"},
    {"report", RunReport, nullptr, "write a job's HTML report with plots (--out FILE.html)"},
    {"health", RunHealth, nullptr, "check a coordinator (gRPC health) or a worker (/healthz); for probes"},
    {"train", nullptr, Always, "train a reference model (or fine-tune one with --init)"},
    {"pretrain", nullptr, Always, "pretrain a transformer on general text (gcide, wordnet, fortunes or your files)"},
    {"eval", nullptr, Always, "measure a model: accuracy, bytes, latency"},
    {"init", nullptr, Always, "write a randomly initialised model of a known shape (bert base, gpt2 small, ...)"},
    {"apply", nullptr, Always, "apply one policy file to a model and measure the result"},
    {"predict", nullptr, Always, "labels, generated text or image classes from a model, in LibTorch or ONNX Runtime"},
    {"export", nullptr, Always, "export a model to ONNX for ONNX Runtime (model.onnx, tokenizer, export.json)"},
    {"demo", nullptr, Always, "train (once), compress the reference CNN with each search; print the table"},
};

void PrintHelp(std::ostream& out) {
  out << "usage: shrink COMMAND [flags]   (shrink COMMAND --help for its flags)\n\ncommands:\n";
  for (const auto& c : kCommands) out << "  " << c.name << std::string(10 - std::strlen(c.name), ' ') << c.help << "\n";
}

}  // namespace

int RunCli(int argc, char** argv, LocalCommandRunner run_local) {
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
    if (name != c.name) continue;
    if (!c.run || (c.runs_locally && c.runs_locally(argc - 2, argv + 2))) return run_local(argc, argv);
    return c.run(argc - 2, argv + 2);
  }
  std::cerr << "shrink: unknown command '" << name << "'\n";
  PrintHelp(std::cerr);
  return 2;
}

}  // namespace shrink::client
