#include "tests/test_util/coordinator_process.h"

#include <gtest/gtest.h>

#include <fstream>

#include "common/blob_upload.h"
#include "common/files.h"

namespace shrink::testing {

CoordinatorProcess StartCoordinator(const std::string& state_dir, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {BinPath("shrink-coordinator"), "--listen", "127.0.0.1:0", "--metrics",
                                   "127.0.0.1:0", "--state", state_dir};
  argv.insert(argv.end(), args.begin(), args.end());
  CoordinatorProcess c;
  c.process = std::make_unique<Subprocess>(argv);
  auto ready = c.process->WaitForReadyLine("shrink-coordinator ready");
  c.address = ready["grpc"];
  if (ready.count("metrics")) c.metrics_port = std::stoi(ready["metrics"].substr(ready["metrics"].rfind(':') + 1));
  return c;
}

std::unique_ptr<Subprocess> StartSimulatedWorker(const std::string& address, double seconds,
                                                 const std::string& cache_dir,
                                                 const std::vector<std::string>& args, int* metrics_port) {
  std::vector<std::string> argv = {BinPath("shrink-worker"), "--coordinator", address, "--simulate",
                                   std::to_string(seconds), "--cache", cache_dir, "--metrics", "127.0.0.1:0"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto worker = std::make_unique<Subprocess>(argv);
  auto ready = worker->WaitForReadyLine("shrink-worker ready");
  if (metrics_port != nullptr) *metrics_port = std::stoi(ready["metrics"].substr(ready["metrics"].rfind(':') + 1));
  return worker;
}

std::string WriteFakeModel(const std::string& dir) {
  std::string model = dir + "/fake-model";
  EXPECT_TRUE(MakeDirs(model).ok());
  EXPECT_TRUE(WriteFileAtomic(model + "/config.json", "{\"model_type\": \"fake\"}").ok());
  EXPECT_TRUE(WriteFileAtomic(model + "/model.safetensors", std::string(4096, 'w')).ok());
  return model;
}

v1::JobSpec UploadedSpec(v1::Coordinator::Stub* stub, const std::string& dir, int budget) {
  std::string model = WriteFakeModel(dir);
  v1::JobSpec spec;
  for (const char* name : {"config.json", "model.safetensors"}) {
    auto ref = DescribeFile(model + "/" + name, name);
    EXPECT_TRUE(ref.ok());
    absl::Status uploaded = UploadFile(stub, model + "/" + name, *ref);
    EXPECT_TRUE(uploaded.ok()) << uploaded;
    *spec.add_model_files() = *ref;
  }
  spec.mutable_task()->set_name("fashion-mnist");
  spec.mutable_goal()->set_target_size(0.25);
  spec.mutable_goal()->set_min_retention(0.9);
  spec.set_budget(budget);
  spec.set_search("random");
  return spec;
}

std::string WriteJobFile(const std::string& dir, int budget) {
  std::string model = WriteFakeModel(dir);
  std::string path = dir + "/job.yaml";
  std::ofstream(path) << "model: " << model << "\ntask: fashion-mnist\ntarget_size: 0.25\nmin_retention: 0.9\n"
                      << "budget: " << budget << "\nsearch: random\nseed: 3\n";
  return path;
}

}  // namespace shrink::testing
