// Clean shutdown on SIGINT / SIGTERM for the server binaries.
#pragma once

#include <functional>

namespace shrink {

// Blocks SIGINT and SIGTERM in the calling thread and every thread it starts
// afterwards (call it first in main), and runs `on_signal` on a dedicated
// thread when one arrives.
void OnTerminationSignal(std::function<void()> on_signal);

}  // namespace shrink
