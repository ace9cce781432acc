#include "common/task_names.h"

#include <gtest/gtest.h>

namespace shrink {
namespace {

TEST(TaskNamesTest, BuiltinTasksAndOneUserDataFileAreAccepted) {
  for (const auto& name : BuiltinTaskNames()) {
    EXPECT_FALSE(IsUserTaskFile(name));
    EXPECT_TRUE(ValidateTaskName(name, 0).ok()) << name;
  }
  EXPECT_TRUE(ValidateTaskName("reviews.jsonl", 1).ok());
  EXPECT_TRUE(ValidateTaskName("reviews.tsv", 1).ok());
  EXPECT_TRUE(ValidateTaskName("corpus.txt", 1).ok());
}

TEST(TaskNamesTest, UnknownNamesAndMissingDataFilesAreRefusedByName) {
  absl::Status unknown = ValidateTaskName("imagenet", 0);
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.message().find("'imagenet'"), std::string::npos) << unknown;
  EXPECT_NE(unknown.message().find("fortunes-topic"), std::string::npos) << unknown;

  absl::Status missing = ValidateTaskName("corpus.txt", 0);
  EXPECT_NE(missing.message().find("exactly one uploaded data file, got 0"), std::string::npos) << missing;
  EXPECT_FALSE(ValidateTaskName("a.jsonl", 2).ok());
}

}  // namespace
}  // namespace shrink
