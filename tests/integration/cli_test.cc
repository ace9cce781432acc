// The shrink CLI without servers: embedded compress (coordinator and worker
// inside the client process over in-process channels), apply, flags.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "tests/test_util/subprocess.h"
#include "tests/test_util/tiny_model.h"
#include "worker/nn/device.h"

namespace shrink {
namespace {

using testing::BinPath;
using testing::RunCommand;

TEST(CliTest, EmbeddedCompressRunsWithoutServersAndTheResultLoads) {
  std::string dir = *MakeTempDir("shrink-embedded-test-");
  std::string model = testing::TinyTrainedModel();

  std::string out = dir + "/small";
  auto compressed = RunCommand({BinPath("shrink"), "compress", "--model", model, "--task", "fashion-mnist",
                                "--target-size", "0.25", "--min-retention", "0.5", "--budget", "3",
                                "--search", "random", "--seed", "3", "--out", out, "--json",
                                "--state", dir + "/state"});
  ASSERT_EQ(compressed.exit_code, 0) << compressed.err;
  auto result = nlohmann::json::parse(compressed.out);
  EXPECT_EQ(result["state"], "succeeded");
  EXPECT_EQ(result["evaluated"], 3);
  EXPECT_EQ(result["runtime"], "libtorch");
  EXPECT_LE(result["size_ratio"].get<double>(), 0.25);
  EXPECT_GT(result["retention"].get<double>(), 0.0);
  // The state folder holds the job database and the blobs, as a server's would.
  EXPECT_TRUE(PathExists(dir + "/state/coordinator/shrink.db"));

  auto evaluated = RunCommand({BinPath("shrink"), "eval", "--model", out, "--json", "--threads", "1"});
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.err;
  auto eval = nlohmann::json::parse(evaluated.out);
  EXPECT_EQ(eval["bytes"], result["bytes"]);
  EXPECT_DOUBLE_EQ(eval["accuracy"].get<double>(), result["accuracy"].get<double>());
  RemoveAll(dir);
}

TEST(CliTest, EmbeddedCompressForOnnxRuntimeNeedsItHereAndSaysWhatIsMissing) {
  std::string dir = *MakeTempDir("shrink-embedded-onnx-test-");
  auto compressed = RunCommand({"/usr/bin/env", "SHRINK_NODE=/nonexistent/node", BinPath("shrink"), "compress",
                                "--model", testing::TinyTrainedModel(), "--budget", "2", "--runtime", "onnxruntime",
                                "--out", dir + "/small"});
  EXPECT_NE(compressed.exit_code, 0);
  EXPECT_NE(compressed.err.find("runtime onnxruntime is not usable here"), std::string::npos) << compressed.err;
  EXPECT_FALSE(PathExists(dir + "/small"));
  RemoveAll(dir);
}

TEST(CliTest, ApplyWritesThePolicysModelAndMeasuresItAgainstTheInput) {
  std::string dir = *MakeTempDir("shrink-apply-test-");
  std::string model = testing::TinyTrainedModel();
  ASSERT_TRUE(WriteFileAtomic(dir + "/policy.json", R"({"layers": [
      {"name": "conv1", "prune": 0, "bits": 32}, {"name": "conv2", "prune": 0.5, "bits": 8},
      {"name": "fc1", "prune": 0.25, "bits": 8}, {"name": "fc2", "prune": 0, "bits": 16}]})").ok());
  auto applied = RunCommand({BinPath("shrink"), "apply", "--model", model, "--policy", dir + "/policy.json",
                             "--out", dir + "/out", "--json", "--threads", "1"});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  auto result = nlohmann::json::parse(applied.out);
  EXPECT_LT(result["size_ratio"].get<double>(), 0.5);
  EXPECT_LT(result["params"].get<int64_t>(), result["baseline"]["params"].get<int64_t>());
  EXPECT_DOUBLE_EQ(result["retention"].get<double>(),
                   result["accuracy"].get<double>() / result["baseline"]["accuracy"].get<double>());
  EXPECT_EQ(*FileSize(dir + "/out/model.safetensors") + *FileSize(dir + "/out/config.json"),
            result["bytes"].get<int64_t>());

  // A policy naming a layer the model lacks is refused, naming it, and writes nothing.
  ASSERT_TRUE(WriteFileAtomic(dir + "/bad.json", R"({"layers": [{"name": "conv9", "prune": 0.5}]})").ok());
  auto refused = RunCommand({BinPath("shrink"), "apply", "--model", model, "--policy", dir + "/bad.json",
                             "--out", dir + "/bad-out"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("conv1"), std::string::npos) << refused.err;
  EXPECT_FALSE(PathExists(dir + "/bad-out"));
  RemoveAll(dir);
}

TEST(CliTest, ApplyImportanceActivationRanksTheCnnOnTheTask) {
  std::string dir = *MakeTempDir("shrink-importance-test-");
  std::string model = testing::TinyTrainedModel();
  ASSERT_TRUE(WriteFileAtomic(dir + "/policy.json", R"({"uniform": {"prune": 0.5, "bits": 32}})").ok());
  auto apply = [&](const std::string& importance, const std::string& task) {
    std::vector<std::string> command = {BinPath("shrink"), "apply", "--model", model, "--policy", dir + "/policy.json",
                                        "--out", dir + "/" + importance + task, "--json", "--threads", "1",
                                        "--importance", importance, "--distill-steps", "0", "--task", task};
    return RunCommand(command);
  };
  auto magnitude = apply("magnitude", "fashion-mnist");
  auto activation = apply("activation", "fashion-mnist");
  auto no_data = apply("activation", "none");
  for (const auto* run : {&magnitude, &activation, &no_data}) ASSERT_EQ(run->exit_code, 0) << run->err;
  // Same shapes, other channels / neurons: ranked on the task's images, not by weight norms.
  auto m = nlohmann::json::parse(magnitude.out), a = nlohmann::json::parse(activation.out);
  EXPECT_EQ(a["params"], m["params"]);
  EXPECT_GT(a["accuracy"].get<double>(), 0.3);
  auto weights = [&](const std::string& out) { return *ReadFile(dir + "/" + out + "/model.safetensors"); };
  EXPECT_TRUE(weights("activationfashion-mnist") != weights("magnitudefashion-mnist"));
  // Without a task there are no images to rank on: magnitude, byte for byte.
  EXPECT_TRUE(weights("activationnone") == weights("magnitudefashion-mnist"));

  auto bad = RunCommand({BinPath("shrink"), "apply", "--model", model, "--policy", dir + "/policy.json", "--out",
                         dir + "/bad", "--importance", "taylor"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--importance taylor"), std::string::npos) << bad.err;
  RemoveAll(dir);
}

TEST(CliTest, CommandsAnswerHelpVersionAndUsageErrors) {
  for (const char* binary : {"shrink", "shrink-coordinator", "shrink-worker"}) {
    auto version = RunCommand({BinPath(binary), "--version"});
    EXPECT_EQ(version.exit_code, 0) << binary;
    EXPECT_NE(version.out.find(binary), std::string::npos);
    auto help = RunCommand({BinPath(binary), "--help"});
    EXPECT_EQ(help.exit_code, 0) << binary;
    EXPECT_NE(help.out.find("usage"), std::string::npos) << binary;
    auto bad = RunCommand({BinPath(binary), "--no-such-flag"});
    EXPECT_EQ(bad.exit_code, 2) << binary;
  }
  auto missing_model = RunCommand({BinPath("shrink"), "compress", "--budget", "3"});
  EXPECT_EQ(missing_model.exit_code, 2);
  EXPECT_NE(missing_model.err.find("--model"), std::string::npos);
  auto no_model_dir = RunCommand({BinPath("shrink"), "eval", "--model", "/nonexistent/model"});
  EXPECT_EQ(no_model_dir.exit_code, 1);
  EXPECT_NE(no_model_dir.err.find("/nonexistent/model"), std::string::npos) << no_model_dir.err;
  auto bad_arch = RunCommand({BinPath("shrink"), "train", "--arch", "resnet", "--out", "/tmp/x"});
  EXPECT_EQ(bad_arch.exit_code, 2);
  EXPECT_NE(bad_arch.err.find("resnet"), std::string::npos);
}

// A job's errors name the files the user gave, not the worker's cache of them.
TEST(CliTest, CompressErrorsNameTheUsersFilesNotTheWorkersCache) {
  std::string dir = *MakeTempDir("shrink-user-files-test-");
  const std::string model = dir + "/my-cnn";
  ASSERT_TRUE(MakeDirs(model).ok());
  const std::string trained = testing::TinyTrainedModel();
  ASSERT_TRUE(WriteFileAtomic(model + "/model.safetensors", *ReadFile(trained + "/model.safetensors")).ok());
  auto config = nlohmann::json::parse(*ReadFile(trained + "/config.json"));
  config["quantization"] = "none";  // not an object
  ASSERT_TRUE(WriteFileAtomic(model + "/config.json", config.dump()).ok());
  auto compress = [&](const std::string& model_dir, const std::string& task) {
    return RunCommand({BinPath("shrink"), "compress", "--model", model_dir, "--task", task, "--budget", "1",
                       "--search", "uniform", "--out", dir + "/out", "--state", dir + "/state"});
  };
  auto bad_config = compress(model, "fashion-mnist");
  EXPECT_NE(bad_config.exit_code, 0);
  EXPECT_NE(bad_config.err.find(model + "/config.json (sha256 "), std::string::npos) << bad_config.err;
  EXPECT_NE(bad_config.err.find("\"quantization\" is not an object"), std::string::npos) << bad_config.err;
  EXPECT_EQ(bad_config.err.find("/models/"), std::string::npos) << bad_config.err;

  const std::string task = dir + "/reviews.jsonl";
  ASSERT_TRUE(WriteFileAtomic(task, "{\"text\": \"fine\", \"label\": \"a\"}\n{\"text\": \n").ok());
  auto bad_task = compress(trained, task);
  EXPECT_NE(bad_task.exit_code, 0);
  EXPECT_NE(bad_task.err.find(task + " (sha256 "), std::string::npos) << bad_task.err;
  EXPECT_NE(bad_task.err.find("line 2: invalid JSON"), std::string::npos) << bad_task.err;
  EXPECT_EQ(bad_task.err.find("blobs/"), std::string::npos) << bad_task.err;
  RemoveAll(dir);
}

// Lease flags are refused before anything starts: a lease of 0, a task cap
// shorter than the lease, a heartbeat that never comes.
TEST(CliTest, LeaseAndHeartbeatFlagsAreValidated) {
  auto zero_lease = RunCommand({BinPath("shrink-coordinator"), "--state", "/nonexistent/state", "--lease-seconds", "0"});
  EXPECT_EQ(zero_lease.exit_code, 2);
  EXPECT_NE(zero_lease.err.find("--lease-seconds must be > 0"), std::string::npos) << zero_lease.err;
  auto short_cap = RunCommand({BinPath("shrink-coordinator"), "--state", "/nonexistent/state", "--max-task-seconds", "30"});
  EXPECT_EQ(short_cap.exit_code, 2);
  EXPECT_NE(short_cap.err.find("--max-task-seconds must be a number >= --lease-seconds"), std::string::npos)
      << short_cap.err;
  auto no_heartbeat = RunCommand({BinPath("shrink-worker"), "--coordinator", "127.0.0.1:1", "--heartbeat-seconds", "0"});
  EXPECT_EQ(no_heartbeat.exit_code, 2);
  EXPECT_NE(no_heartbeat.err.find("--heartbeat-seconds must be > 0"), std::string::npos) << no_heartbeat.err;
}

TEST(CliTest, WorkerRefusesADeviceItCannotUse) {
  // Refused before connecting anywhere (nothing listens on port 1): a usage error naming the reason.
  auto malformed = RunCommand({BinPath("shrink-worker"), "--coordinator", "127.0.0.1:1", "--device", "gpu0"});
  EXPECT_EQ(malformed.exit_code, 2);
  EXPECT_NE(malformed.err.find("--device: \"gpu0\" is not a device"), std::string::npos) << malformed.err;
  auto missing = RunCommand({BinPath("shrink-worker"), "--coordinator", "127.0.0.1:1", "--device", "cuda:99"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("cuda:99 is not available"), std::string::npos) << missing.err;
  if (worker::CudaDeviceCount() == 0) {
    // Debian's LibTorch is CPU-only.
    auto cuda = RunCommand({BinPath("shrink-worker"), "--coordinator", "127.0.0.1:1", "--device", "cuda:0"});
    EXPECT_EQ(cuda.exit_code, 2);
    EXPECT_NE(cuda.err.find("torch::cuda::is_available() is false"), std::string::npos) << cuda.err;
  }
}

TEST(CliTest, WorkerRefusesARuntimeItCannotRun) {
  auto unknown = RunCommand({BinPath("shrink-worker"), "--coordinator", "127.0.0.1:1", "--runtimes", "libtorch,tensorrt"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("--runtimes: unknown runtime 'tensorrt'; known: libtorch, onnxruntime"), std::string::npos)
      << unknown.err;
  // Without node, onnxruntime cannot start: the worker says what is missing instead of advertising it.
  auto no_node = RunCommand({"/usr/bin/env", "SHRINK_NODE=/nonexistent/node", BinPath("shrink-worker"), "--coordinator",
                             "127.0.0.1:1", "--runtimes", "onnxruntime"});
  EXPECT_EQ(no_node.exit_code, 2);
  EXPECT_NE(no_node.err.find("runtime onnxruntime is not usable here"), std::string::npos) << no_node.err;
}

}  // namespace
}  // namespace shrink
