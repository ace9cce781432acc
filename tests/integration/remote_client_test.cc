// The torch-free `shrink`: the binary loads no LibTorch and no SQLite, its remote
// commands work against a real coordinator without LD_LIBRARY_PATH, and the commands
// that need LibTorch run in shrink-torch beside it, or fail clearly without it.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/files.h"
#include "tests/test_util/coordinator_process.h"
#include "tests/test_util/subprocess.h"

namespace shrink {
namespace {

using testing::BinPath;
using testing::RunCommand;

// The shared libraries `binary` loads, directly or not (ldd's first column).
std::vector<std::string> LoadedLibraries(const std::string& binary) {
  auto ldd = RunCommand({"/usr/bin/ldd", binary});
  EXPECT_EQ(ldd.exit_code, 0) << ldd.err;
  std::vector<std::string> libraries;
  std::istringstream lines(ldd.out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string name;
    if (fields >> name) libraries.push_back(name.substr(name.rfind('/') + 1));
  }
  return libraries;
}

// Whether a library is LibTorch's (libtorch*, libc10*) or SQLite.
bool IsTorchOrSqlite(const std::string& library) {
  return absl::StartsWith(library, "libtorch") || absl::StartsWith(library, "libc10") ||
         absl::StartsWith(library, "libsqlite3");
}

// `binary ARGS...` with LD_LIBRARY_PATH unset.
testing::CommandResult RunWithoutLibraryPath(const std::string& binary, std::vector<std::string> args) {
  args.insert(args.begin(), {"/usr/bin/env", "-u", "LD_LIBRARY_PATH", binary});
  return RunCommand(args);
}

TEST(RemoteClientTest, ShrinkLoadsNeitherLibTorchNorSqlite) {
  std::vector<std::string> shrink = LoadedLibraries(BinPath("shrink"));
  ASSERT_FALSE(shrink.empty());
  for (const auto& library : shrink) EXPECT_FALSE(IsTorchOrSqlite(library)) << "bin/shrink loads " << library;
  // The check can fail: shrink-torch, which runs the model commands, does load LibTorch.
  int torch = 0;
  for (const auto& library : LoadedLibraries(BinPath("shrink-torch"))) torch += IsTorchOrSqlite(library);
  EXPECT_GT(torch, 0);
}

TEST(RemoteClientTest, RemoteCommandsWorkAgainstACoordinatorWithoutLibraryPath) {
  std::string dir = *MakeTempDir("shrink-remote-client-");
  auto coordinator = testing::StartCoordinator(dir + "/state");
  // shrink alone in a folder: no shrink-torch beside it, as on a machine without LibTorch.
  const std::string shrink = dir + "/bin/shrink";
  ASSERT_EQ(RunCommand({"/bin/mkdir", "-p", dir + "/bin"}).exit_code, 0);
  ASSERT_EQ(RunCommand({"/bin/cp", BinPath("shrink"), shrink}).exit_code, 0);

  auto submitted =
      RunWithoutLibraryPath(shrink, {"submit", testing::WriteJobFile(dir, 3), "--coordinator", coordinator.address});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::string id = submitted.out.substr(0, submitted.out.find('\n'));
  ASSERT_FALSE(id.empty());
  auto status = RunWithoutLibraryPath(shrink, {"status", id, "--json", "--coordinator", coordinator.address});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_EQ(nlohmann::json::parse(status.out)["job"], id);
  auto listed = RunWithoutLibraryPath(shrink, {"list", "--coordinator", coordinator.address});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find(id), std::string::npos) << listed.out;
  auto health = RunWithoutLibraryPath(shrink, {"health", "--coordinator", coordinator.address});
  EXPECT_EQ(health.exit_code, 0) << health.err;
  EXPECT_EQ(health.out, "SERVING\n");
  // --help still lists every command, the local ones included.
  auto help = RunWithoutLibraryPath(shrink, {"--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* command : {"compress", "status", "list", "train", "eval", "init", "apply", "demo"}) {
    EXPECT_NE(help.out.find(std::string("  ") + command + " "), std::string::npos) << command;
  }
  RemoveAll(dir);
}

TEST(RemoteClientTest, LocalCommandsWithoutShrinkTorchFailNamingTheLocalRuntime) {
  std::string dir = *MakeTempDir("shrink-no-torch-");
  const std::string shrink = dir + "/shrink";
  ASSERT_EQ(RunCommand({"/bin/cp", BinPath("shrink"), shrink}).exit_code, 0);
  for (const char* command : {"train", "eval", "init", "apply", "demo"}) {
    auto run = RunCommand({shrink, command, "--help"});
    EXPECT_EQ(run.exit_code, 1) << command;
    EXPECT_NE(run.err.find(std::string("'") + command + "' needs the local runtime (LibTorch)"), std::string::npos)
        << run.err;
    EXPECT_NE(run.err.find(dir + "/shrink-torch"), std::string::npos) << run.err;
  }
  auto embedded = RunCommand({shrink, "compress", "--model", dir});
  EXPECT_EQ(embedded.exit_code, 1);
  EXPECT_NE(embedded.err.find("'compress' without --coordinator needs the local runtime (LibTorch)"),
            std::string::npos)
      << embedded.err;
  // compress --help and compress --coordinator stay in shrink.
  auto help = RunCommand({shrink, "compress", "--help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_NE(help.out.find("usage: shrink compress"), std::string::npos);
  auto remote = RunCommand({shrink, "compress", "--model", dir, "--coordinator", "127.0.0.1:1"});
  EXPECT_EQ(remote.exit_code, 1);
  EXPECT_EQ(remote.err.find("local runtime"), std::string::npos) << remote.err;
  EXPECT_NE(remote.err.find("config.json"), std::string::npos) << remote.err;

  // A shrink-torch the loader cannot start (it exits 127) is the same clear error.
  ASSERT_TRUE(WriteFileAtomic(dir + "/shrink-torch", "#!/bin/sh\nexit 127\n").ok());
  ASSERT_EQ(RunCommand({"/bin/chmod", "+x", dir + "/shrink-torch"}).exit_code, 0);
  auto unloadable = RunCommand({shrink, "eval", "--model", dir});
  EXPECT_EQ(unloadable.exit_code, 1);
  EXPECT_NE(unloadable.err.find("'eval' needs the local runtime (LibTorch)"), std::string::npos) << unloadable.err;
  RemoveAll(dir);
}

TEST(RemoteClientTest, ShrinkHandsLocalCommandsToShrinkTorchWithTheSameArguments) {
  std::string dir = *MakeTempDir("shrink-dispatch-");
  const std::string shrink = dir + "/shrink";
  ASSERT_EQ(RunCommand({"/bin/cp", BinPath("shrink"), shrink}).exit_code, 0);
  ASSERT_TRUE(WriteFileAtomic(dir + "/shrink-torch", "#!/bin/sh\necho \"$@\"\nexit 3\n").ok());
  ASSERT_EQ(RunCommand({"/bin/chmod", "+x", dir + "/shrink-torch"}).exit_code, 0);
  auto train = RunCommand({shrink, "train", "--arch", "cnn", "--out", "a b"});
  EXPECT_EQ(train.exit_code, 3);
  EXPECT_EQ(train.out, "train --arch cnn --out a b\n");
  auto compress = RunCommand({shrink, "compress", "--model", "m", "--budget", "2"});
  EXPECT_EQ(compress.exit_code, 3);
  EXPECT_EQ(compress.out, "compress --model m --budget 2\n");
  // The real shrink-torch answers every command as shrink does.
  auto version = RunCommand({BinPath("shrink-torch"), "--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out, RunCommand({BinPath("shrink"), "--version"}).out);
  EXPECT_EQ(RunCommand({BinPath("shrink-torch"), "--help"}).out, RunCommand({BinPath("shrink"), "--help"}).out);
  RemoveAll(dir);
}

}  // namespace
}  // namespace shrink
