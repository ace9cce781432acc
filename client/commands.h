// The `shrink` subcommands. Each takes the arguments after its name and
// returns the process exit code: 0 ok, 2 usage error, 1 failure.
#pragma once

namespace shrink::client {

int RunCompress(int argc, char** argv);
int RunSubmit(int argc, char** argv);
int RunWatch(int argc, char** argv);
int RunStatus(int argc, char** argv);
int RunList(int argc, char** argv);
int RunCancel(int argc, char** argv);
int RunFetch(int argc, char** argv);
int RunTrain(int argc, char** argv);
int RunEval(int argc, char** argv);
int RunApply(int argc, char** argv);
int RunInit(int argc, char** argv);
int RunDemo(int argc, char** argv);
int RunReport(int argc, char** argv);
int RunHealth(int argc, char** argv);

}  // namespace shrink::client
