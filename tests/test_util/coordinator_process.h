// A real shrink-coordinator process for integration tests, and job specs for
// simulated workers (`shrink-worker --simulate`), which never open the model.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "shrink/v1/coordinator.grpc.pb.h"
#include "tests/test_util/subprocess.h"

namespace shrink::testing {

struct CoordinatorProcess {
  std::unique_ptr<Subprocess> process;
  std::string address;    // host:port of gRPC
  int metrics_port = 0;
};

// Starts `shrink-coordinator --listen 127.0.0.1:0 --metrics 127.0.0.1:0 --state STATE ARGS...`.
CoordinatorProcess StartCoordinator(const std::string& state_dir, const std::vector<std::string>& args = {});

// Starts `shrink-worker --coordinator ADDRESS --simulate SECONDS --cache DIR ARGS...`, ready;
// `metrics_port`, when given, receives the port of its /metrics.
std::unique_ptr<Subprocess> StartSimulatedWorker(const std::string& address, double seconds,
                                                 const std::string& cache_dir,
                                                 const std::vector<std::string>& args = {},
                                                 int* metrics_port = nullptr);

// Writes a model folder (config.json + model.safetensors) of a few bytes into `dir`.
std::string WriteFakeModel(const std::string& dir);

// Uploads a fake model through `stub` and returns a valid spec naming it
// (task fashion-mnist without data files, random search, `budget`).
v1::JobSpec UploadedSpec(v1::Coordinator::Stub* stub, const std::string& dir, int budget);

// A job file for `shrink submit` with a fake model.
std::string WriteJobFile(const std::string& dir, int budget);

}  // namespace shrink::testing
