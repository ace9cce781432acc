#include "common/signals.h"

#include <pthread.h>
#include <signal.h>

#include <mutex>
#include <thread>

namespace shrink {
namespace {
std::mutex g_run_mu;  // held while a callback runs, so replacing it waits
std::mutex g_mu;
std::function<void()> g_callback;
bool g_signalled = false;
}  // namespace

void InstallTerminationHandler() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int signal = 0;
    sigwait(&set, &signal);
    std::lock_guard<std::mutex> running(g_run_mu);
    std::function<void()> callback;
    {
      std::lock_guard<std::mutex> lock(g_mu);
      g_signalled = true;
      callback = g_callback;
    }
    if (callback) callback();
  }).detach();
}

void OnTerminationSignal(std::function<void()> on_signal) {
  std::lock_guard<std::mutex> running(g_run_mu);
  bool run_now;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_callback = on_signal;
    run_now = g_signalled;
  }
  if (run_now && on_signal) on_signal();
}

}  // namespace shrink
