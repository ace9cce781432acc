// `shrink compress` without --coordinator: the coordinator and a worker run
// inside the client process over in-process channels.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "tests/test_util/subprocess.h"

namespace shrink {
namespace {

using testing::BinPath;
using testing::RunCommand;

TEST(EmbeddedTest, CompressRunsWithoutServersAndTheResultLoads) {
  std::string dir = *MakeTempDir("shrink-embedded-test-");
  std::string model = dir + "/model";
  auto trained = RunCommand({BinPath("shrink"), "train", "--out", model, "--epochs", "1", "--max-examples", "2000"});
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  EXPECT_NE(trained.out.find("test accuracy"), std::string::npos);

  std::string out = dir + "/small";
  auto compressed = RunCommand({BinPath("shrink"), "compress", "--model", model, "--task", "fashion-mnist",
                                "--target-size", "0.25", "--min-retention", "0.5", "--budget", "3",
                                "--search", "random", "--seed", "3", "--out", out, "--json",
                                "--state", dir + "/state"});
  ASSERT_EQ(compressed.exit_code, 0) << compressed.err;
  auto result = nlohmann::json::parse(compressed.out);
  EXPECT_EQ(result["state"], "succeeded");
  EXPECT_EQ(result["evaluated"], 3);
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

TEST(EmbeddedTest, CommandsAnswerHelpVersionAndUsageErrors) {
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

}  // namespace
}  // namespace shrink
