#include "tests/test_util/tiny_model.h"

#include <gtest/gtest.h>

#include "common/files.h"
#include "tests/test_util/subprocess.h"

namespace shrink::testing {

std::string TinyTrainedModel() {
  std::string dir = std::string(SHRINK_BIN_DIR) + "/../test-models/cnn-tiny";
  if (PathExists(dir + "/model.safetensors") && PathExists(dir + "/config.json")) return dir;
  auto trained = RunCommand({BinPath("shrink"), "train", "--arch", "cnn", "--data", "fashion-mnist", "--out", dir,
                             "--epochs", "1", "--max-examples", "3000"});
  EXPECT_EQ(trained.exit_code, 0) << trained.err;
  EXPECT_NE(trained.out.find("test accuracy"), std::string::npos) << trained.out;
  return dir;
}

}  // namespace shrink::testing
