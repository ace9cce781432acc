#include "tests/test_util/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace shrink::testing {
namespace {

std::vector<char*> CArgs(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

}  // namespace

std::string BinPath(const std::string& name) { return std::string(SHRINK_BIN_DIR) + "/" + name; }

CommandResult RunCommand(const std::vector<std::string>& argv) {
  CommandResult result;
  char out_template[] = "/tmp/shrink-test-outXXXXXX";
  char err_template[] = "/tmp/shrink-test-errXXXXXX";
  int out_fd = mkstemp(out_template);
  int err_fd = mkstemp(err_template);
  pid_t pid = fork();
  if (pid == 0) {
    int null_fd = open("/dev/null", O_RDONLY);
    dup2(null_fd, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    auto args = CArgs(argv);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = DecodeStatus(status);
  lseek(out_fd, 0, SEEK_SET);
  lseek(err_fd, 0, SEEK_SET);
  result.out = ReadAll(out_fd);
  result.err = ReadAll(err_fd);
  close(out_fd);
  close(err_fd);
  unlink(out_template);
  unlink(err_template);
  return result;
}

Subprocess::Subprocess(std::vector<std::string> argv) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) ADD_FAILURE() << "pipe failed";
  pid_ = fork();
  if (pid_ == 0) {
    int null_fd = open("/dev/null", O_RDONLY);
    dup2(null_fd, 0);
    dup2(pipe_fds[1], 1);
    close(pipe_fds[0]);
    auto args = CArgs(argv);
    execv(args[0], args.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  stdout_fd_ = pipe_fds[0];
}

Subprocess::~Subprocess() {
  if (!exited_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    Wait();
  }
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

std::string Subprocess::WaitForLineContaining(const std::string& needle) {
  std::string skipped;  // the lines before, for the failure message
  while (true) {
    size_t newline;
    while ((newline = buffer_.find('\n')) != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      if (line.find(needle) != std::string::npos) return line;
      skipped += line + "\n";
    }
    char buf[1024];
    ssize_t n = read(stdout_fd_, buf, sizeof(buf));  // blocks until output or exit
    if (n <= 0) {
      ADD_FAILURE() << "process exited before printing '" << needle << "' (exit " << Wait()
                    << "); it printed:\n" << skipped << buffer_;
      return "";
    }
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

std::map<std::string, std::string> Subprocess::WaitForReadyLine(const std::string& prefix) {
  std::map<std::string, std::string> fields;
  std::string line = WaitForLineContaining(prefix);
  if (line.rfind(prefix, 0) != 0) return fields;
  for (absl::string_view part : absl::StrSplit(line, ' ')) {
    std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
    if (!kv.second.empty()) fields[kv.first] = kv.second;
  }
  return fields;
}

void Subprocess::Kill(int signal) {
  if (!exited_) kill(pid_, signal);
}

int Subprocess::Wait() {
  if (exited_) return exit_code_;
  int status = 0;
  waitpid(pid_, &status, 0);
  exited_ = true;
  exit_code_ = DecodeStatus(status);
  return exit_code_;
}

std::string HttpGet(const std::string& host, int port, const std::string& path) {
  httplib::Client client(host, port);
  client.set_connection_timeout(5, 0);
  auto response = client.Get(path);
  if (!response) {
    ADD_FAILURE() << "GET " << host << ":" << port << path << " failed";
    return "";
  }
  EXPECT_EQ(response->status, 200) << path;
  return response->body;
}

double MetricValue(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      double v = 0;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &v)) return v;
    }
  }
  return -1;
}

}  // namespace shrink::testing
