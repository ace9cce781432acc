// Fuzz target: the job-file parser (client/remote/job_file) behind `shrink submit`.
// The parser reads a path, so each input goes through one temporary file.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "client/remote/job_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/shrink-job-fuzz-" + std::to_string(getpid()) + ".yaml";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  (void)shrink::client::ParseJobFile(path);
  return 0;
}
