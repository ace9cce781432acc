// Minimal leveled logging to stderr with a timestamp and the program name.
#pragma once

#include <sstream>
#include <string>

namespace shrink {

// Sets the tag printed on every line (the binary name) and whether INFO lines print.
void InitLogging(const std::string& program, bool verbose = true);

// Writes one line; thread-safe.
void LogLine(const char* level, const std::string& message);

namespace internal {
class LogMessage {
 public:
  explicit LogMessage(const char* level) : level_(level) {}
  ~LogMessage() { LogLine(level_, stream_.str()); }
  std::ostream& stream() { return stream_; }

 private:
  const char* level_;
  std::ostringstream stream_;
};
}  // namespace internal
}  // namespace shrink

#define SHRINK_LOG(level) ::shrink::internal::LogMessage(#level).stream()
