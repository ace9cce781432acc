#include "common/log.h"

#include <cstdio>
#include <cstring>
#include <mutex>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace shrink {
namespace {
std::mutex g_mu;
std::string g_program = "shrink";
bool g_verbose = true;
}  // namespace

void InitLogging(const std::string& program, bool verbose) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_program = program;
  g_verbose = verbose;
}

void LogLine(const char* level, const std::string& message) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_verbose && std::strcmp(level, "INFO") == 0) return;
  std::string ts = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  std::fprintf(stderr, "%s %s %s: %s\n", ts.c_str(), level, g_program.c_str(), message.c_str());
}

}  // namespace shrink
