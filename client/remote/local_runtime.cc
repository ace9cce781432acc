#include "client/remote/local_runtime.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <vector>

namespace shrink::client {
namespace {

// The signals a user or a supervisor sends to `shrink`; they are passed on to shrink-torch.
constexpr int kForwardedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

volatile sig_atomic_t g_child = 0;

void ForwardToChild(int signal) {
  if (g_child > 0) kill(static_cast<pid_t>(g_child), signal);
}

// Prints why the command cannot run; returns 1.
int NeedsLocalRuntime(int argc, char** argv, const std::string& why) {
  const std::string command = argc > 1 ? argv[1] : "";
  std::cerr << "shrink: '" << command << "'" << (command == "compress" ? " without --coordinator" : "")
            << " needs the local runtime (LibTorch): " << why << "\n";
  return 1;
}

}  // namespace

std::string LocalRuntimePath() {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return "";
  std::string path(self, static_cast<size_t>(n));
  return path.substr(0, path.rfind('/') + 1) + kLocalRuntimeBinary;
}

int RunInLocalRuntime(int argc, char** argv) {
  const std::string path = LocalRuntimePath();
  if (path.empty()) {
    return NeedsLocalRuntime(argc, argv, std::string("cannot find it: /proc/self/exe: ") + std::strerror(errno));
  }
  std::vector<char*> child_argv(argv, argv + argc);
  child_argv.push_back(nullptr);
  // execv's errno comes back through a close-on-exec pipe: EOF means it started.
  int exec_error[2];
  if (pipe2(exec_error, O_CLOEXEC) != 0) return NeedsLocalRuntime(argc, argv, std::strerror(errno));

  // Blocked until the forwarding handlers are in place (and in the child until execv).
  sigset_t forwarded, previous;
  sigemptyset(&forwarded);
  for (int s : kForwardedSignals) sigaddset(&forwarded, s);
  sigprocmask(SIG_BLOCK, &forwarded, &previous);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    close(exec_error[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // killing `shrink` (even with SIGKILL) ends the command
    if (getppid() != parent) _exit(127);
    sigprocmask(SIG_SETMASK, &previous, nullptr);
    execv(path.c_str(), child_argv.data());
    int error = errno;
    (void)!write(exec_error[1], &error, sizeof(error));
    _exit(127);
  }
  close(exec_error[1]);
  if (pid < 0) {
    int error = errno;
    close(exec_error[0]);
    sigprocmask(SIG_SETMASK, &previous, nullptr);
    return NeedsLocalRuntime(argc, argv, std::string("fork: ") + std::strerror(error));
  }
  g_child = pid;
  struct sigaction forward = {};
  forward.sa_handler = ForwardToChild;
  sigemptyset(&forward.sa_mask);
  forward.sa_flags = SA_RESTART;
  for (int s : kForwardedSignals) sigaction(s, &forward, nullptr);
  sigprocmask(SIG_SETMASK, &previous, nullptr);

  int error = 0;
  ssize_t got;
  do {
    got = read(exec_error[0], &error, sizeof(error));
  } while (got < 0 && errno == EINTR);
  close(exec_error[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_child = 0;
  if (got == static_cast<ssize_t>(sizeof(error))) return NeedsLocalRuntime(argc, argv, path + ": " + std::strerror(error));
  if (WIFSIGNALED(status)) {
    // End the same way, so that whoever waits for `shrink` sees the signal.
    const int signal = WTERMSIG(status);
    struct sigaction default_action = {};
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    sigaction(signal, &default_action, nullptr);
    kill(getpid(), signal);
    return 128 + signal;
  }
  const int code = WEXITSTATUS(status);
  // The dynamic loader exits 127 when a library (LibTorch's) is missing; the commands never do.
  if (code == 127) {
    return NeedsLocalRuntime(argc, argv, path + " could not start (exit 127; are LibTorch's libraries installed?)");
  }
  return code;
}

}  // namespace shrink::client
