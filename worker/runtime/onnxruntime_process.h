// ONNX Runtime (CPU, onnxruntime-node pinned by worker/runtime/onnxruntime/package-lock.json)
// in a process kept warm: `node runner.mjs --serve`, spoken to one JSON line at a time over
// its stdin/stdout. Torch-free. Thread-safe: requests from several threads are serialised.
//
// Protocol (runner.mjs): {"id", "op": "load", "model", "threads"} -> {"session", "inputs",
// "outputs"}; {"op": "run", "session", "inputs": {name: {type, dims, data (base64)}},
// "warmup", "repeat", "return"} -> {"outputs": {...}, "latency_ms": [...]}; {"op": "time", "runs":
// [{"session", "inputs"}, ...], "warmup", "repeat"} -> {"latency_ms": [[...], ...]} (the sessions
// in alternating passes); {"op": "unload"}.
// Every reply carries "ok" and, when false, ONNX Runtime's own "error" message.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace shrink::worker {

// A tensor crossing to or from ONNX Runtime: element type ("float32", "int64", ...), dims and
// the raw little-endian bytes.
struct RuntimeTensor {
  std::string type;
  std::vector<int64_t> dims;
  std::string bytes;

  static RuntimeTensor Int64(const std::vector<int64_t>& dims, const std::vector<int64_t>& values);
  static RuntimeTensor Float32(const std::vector<int64_t>& dims, const std::vector<float>& values);
  // The values of a float32 tensor.
  std::vector<float> Floats() const;
};

// Where runner.mjs is: $SHRINK_ONNXRUNTIME_RUNNER, else <binary dir>/../share/shrink/onnxruntime/,
// else this source tree's worker/runtime/onnxruntime/ (a build tree); "" when none exists.
std::string OnnxRuntimeRunnerPath();

class OnnxRuntimeProcess {
 public:
  // A loaded model: the id the runner gave it and its input / output names.
  struct Session {
    int id = 0;
    std::vector<std::string> inputs, outputs;
  };
  // One run: the outputs (unless not asked for) and every timed run's milliseconds.
  struct RunResult {
    std::map<std::string, RuntimeTensor> outputs;
    std::vector<double> latency_ms;
  };

  // Starts node (`$SHRINK_NODE`, else `node` on PATH) on the runner; FailedPrecondition naming
  // what is missing (node, the runner, or onnxruntime-node: run scripts/install-deps.sh).
  static absl::StatusOr<std::unique_ptr<OnnxRuntimeProcess>> Start();
  ~OnnxRuntimeProcess();

  // Creates an inference session for `model_path` with `threads` intra-op threads; ONNX
  // Runtime's own load errors come back with its message.
  absl::StatusOr<Session> Load(const std::string& model_path, int threads);
  // Runs `session` warmup + repeat times on `inputs`; returns the last run's outputs when
  // `return_outputs`.
  absl::StatusOr<RunResult> Run(int session, const std::map<std::string, RuntimeTensor>& inputs, int warmup = 0,
                                int repeat = 1, bool return_outputs = true);
  // Times several sessions, each on its own inputs, in alternating passes after each warms up
  // `warmup` times; every timed run's milliseconds, per session in the order given.
  absl::StatusOr<std::vector<std::vector<double>>> TimeInterleaved(
      const std::vector<std::pair<int, std::map<std::string, RuntimeTensor>>>& runs, int warmup, int repeat);
  // Releases a session.
  absl::Status Unload(int session);
  // True once the runner process has exited (a request found it gone): start a new one.
  bool exited();

 private:
  OnnxRuntimeProcess() = default;
  // Sends one request line and reads the reply line (JSON text).
  absl::StatusOr<std::string> Call(const std::string& request);

  std::mutex mu_;
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  std::string buffered_;
  int64_t next_id_ = 1;
};

}  // namespace shrink::worker
