// Real processes for integration tests: start a binary, read its "ready"
// line for the bound ports, kill it; run a command to completion.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace shrink::testing {

// Path of a built binary: SHRINK_BIN_DIR/name.
std::string BinPath(const std::string& name);

// The exit code and stdout of a finished command.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `argv` to completion (stdin closed), capturing stdout and stderr.
CommandResult RunCommand(const std::vector<std::string>& argv);

// A background process; killed (SIGKILL) on destruction if still running.
class Subprocess {
 public:
  explicit Subprocess(std::vector<std::string> argv);
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // Blocks until the process prints a line starting with `prefix` (returned
  // as key=value pairs), or fails the test if it exits first.
  std::map<std::string, std::string> WaitForReadyLine(const std::string& prefix);
  // Blocks until a line containing `needle` is printed and returns it ("" and
  // a test failure if the process exits first).
  std::string WaitForLineContaining(const std::string& needle);
  void Kill(int signal);
  // Waits for exit; returns the exit code (or 128 + signal).
  int Wait();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string buffer_;
  bool exited_ = false;
  int exit_code_ = -1;
};

// GET http://host:port/path; returns the body ("" and a test failure on error).
std::string HttpGet(const std::string& host, int port, const std::string& path);

// The value of a Prometheus sample line `name{labels} value` in `text`
// (exact series text before the value, e.g. `shrink_queue_depth` or
// `shrink_jobs{state="succeeded"}`); -1 when absent.
double MetricValue(const std::string& text, const std::string& series);

}  // namespace shrink::testing
