// Clean shutdown on SIGINT / SIGTERM for the server binaries.
#pragma once

#include <functional>

namespace shrink {

// Blocks SIGINT and SIGTERM in the calling thread and in every thread started
// after it (so call it first in main, before gRPC or any worker thread
// starts), and waits for them on a dedicated thread.
void InstallTerminationHandler();

// Runs `on_signal` (on the signal thread) when SIGINT or SIGTERM arrives, or
// at once if one already has. Replaces an earlier callback, waiting for it
// to finish if it is running; pass nullptr before what it uses goes away.
void OnTerminationSignal(std::function<void()> on_signal);

}  // namespace shrink
