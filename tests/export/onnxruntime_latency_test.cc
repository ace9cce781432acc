// Latency in ONNX Runtime (worker/latency/): models exported as the artifact is and timed in one
// warm runner beside each other, decoders with their empty cache; which runtimes a worker offers;
// a runner that dies is reported as such.
#include "worker/latency/onnxruntime_latency.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <dirent.h>

#include "common/files.h"
#include "tests/worker/model_test_util.h"
#include "tests/worker/transformer_test_util.h"
#include "worker/runtime/available_runtimes.h"

namespace shrink::worker {
namespace {

using testing::TempDir;

// Entries of `dir` (none once every export was cleaned up).
int Entries(const std::string& dir) {
  int n = 0;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) n += std::string(e->d_name) != "." && std::string(e->d_name) != "..";
    closedir(d);
  }
  return n;
}

EvalOptions Options() {
  EvalOptions options;
  options.threads = 1;
  options.text_latency_batch = 2;
  options.sequence_length = 16;
  options.warmup_runs = 1;
  options.timed_runs = 5;
  return options;
}

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    setenv(name, value, 1);
  }
  ~ScopedEnv() { old_.empty() ? unsetenv(name_) : setenv(name_, old_.c_str(), 1); }

 private:
  const char* name_;
  std::string old_;
};

TEST(OnnxRuntimeLatencyTest, TimesADecoderAndItsCompressedFormSideBySideInOneRunner) {
  TempDir dir;
  std::unique_ptr<Model> model = testing::TinyTransformer(TransformerFamily::kGpt2, dir.Sub("gpt2"));
  ASSERT_NE(model, nullptr);
  v1::Policy policy;
  policy.mutable_uniform()->set_prune(0.5);
  policy.mutable_uniform()->set_bits(8);
  auto compressed = model->Apply(policy);
  ASSERT_TRUE(compressed.ok()) << compressed.status();

  auto started = OnnxRuntimeProcess::Start();
  ASSERT_TRUE(started.ok()) << started.status();
  std::shared_ptr<OnnxRuntimeProcess> process = std::move(*started);
  const std::string work = dir.Sub("work");
  {
    auto baseline = OnnxRuntimeModel::Open(process, *model, Options(), work);
    ASSERT_TRUE(baseline.ok()) << baseline.status();
    auto candidate = OnnxRuntimeModel::Open(process, **compressed, Options(), work);
    ASSERT_TRUE(candidate.ok()) << candidate.status();
    EXPECT_EQ(Entries(work), 2) << "one export folder per model";
    auto pair = TimeInterleavedInOnnxRuntime(**baseline, **candidate, Options());
    ASSERT_TRUE(pair.ok()) << pair.status();
    EXPECT_GT(pair->first_ms, 0);
    EXPECT_GT(pair->second_ms, 0);
    EXPECT_EQ(pair->threads, 1);
    auto alone = TimeInOnnxRuntime(**candidate, Options());
    ASSERT_TRUE(alone.ok()) << alone.status();
    EXPECT_GT(*alone, 0);
  }
  EXPECT_EQ(Entries(work), 0) << "closing a model removes its export";
  EXPECT_FALSE(process->exited());
}

TEST(OnnxRuntimeLatencyTest, ModelsInDifferentRunnersAreNotTimedTogether) {
  TempDir dir;
  std::unique_ptr<Model> model = testing::RandomCnn(dir.Sub("cnn"));
  ASSERT_NE(model, nullptr);
  std::shared_ptr<OnnxRuntimeProcess> a = std::move(*OnnxRuntimeProcess::Start());
  std::shared_ptr<OnnxRuntimeProcess> b = std::move(*OnnxRuntimeProcess::Start());
  EvalOptions options = Options();
  options.latency_batch = 2;
  auto first = OnnxRuntimeModel::Open(a, *model, options, dir.Sub("work"));
  auto second = OnnxRuntimeModel::Open(b, *model, options, dir.Sub("work"));
  ASSERT_TRUE(first.ok() && second.ok());
  auto pair = TimeInterleavedInOnnxRuntime(**first, **second, options);
  EXPECT_EQ(pair.status().code(), absl::StatusCode::kFailedPrecondition) << pair.status();
}

TEST(OnnxRuntimeLatencyTest, ARunnerThatDiesIsReportedAndNotAdvertised) {
  TempDir dir;
  std::unique_ptr<Model> model = testing::RandomCnn(dir.Sub("cnn"));
  ASSERT_NE(model, nullptr);
  EXPECT_TRUE(CheckOnnxRuntime().ok()) << CheckOnnxRuntime();
  auto detected = ResolveRuntimes({});
  ASSERT_TRUE(detected.ok());
  EXPECT_EQ(*detected, (std::vector<std::string>{"libtorch", "onnxruntime"}));

  // A "node" that exits at once stands for a runner that dies.
  ScopedEnv broken("SHRINK_NODE", "/bin/false");
  EXPECT_EQ(*ResolveRuntimes({}), std::vector<std::string>{"libtorch"}) << "detected without it";
  auto refused = ResolveRuntimes({"onnxruntime"});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("runtime onnxruntime is not usable here"), std::string::npos)
      << refused.status();
  auto started = OnnxRuntimeProcess::Start();
  ASSERT_TRUE(started.ok()) << started.status();
  std::shared_ptr<OnnxRuntimeProcess> process = std::move(*started);
  auto opened = OnnxRuntimeModel::Open(process, *model, Options(), dir.Sub("work"));
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kUnavailable) << opened.status();
  EXPECT_NE(opened.status().message().find("the ONNX Runtime runner exited (code 1)"), std::string::npos)
      << opened.status();
  EXPECT_TRUE(process->exited());
  EXPECT_EQ(Entries(dir.Sub("work")), 0) << "a failed open leaves no export behind";
}

}  // namespace
}  // namespace shrink::worker
