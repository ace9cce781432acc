#include "common/signals.h"

#include <pthread.h>
#include <signal.h>

#include <thread>

namespace shrink {

void OnTerminationSignal(std::function<void()> on_signal) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set, on_signal = std::move(on_signal)] {
    int signal = 0;
    sigwait(&set, &signal);
    on_signal();
  }).detach();
}

}  // namespace shrink
