#include "common/api_names.h"

#include <gtest/gtest.h>

namespace shrink {
namespace {

TEST(ApiNamesTest, JobStatesAreLowerCase) {
  EXPECT_STREQ(JobStateName(v1::QUEUED), "queued");
  EXPECT_STREQ(JobStateName(v1::SEARCHING), "searching");
  EXPECT_STREQ(JobStateName(v1::FINALIZING), "finalizing");
  EXPECT_STREQ(JobStateName(v1::SUCCEEDED), "succeeded");
  EXPECT_STREQ(JobStateName(v1::FAILED), "failed");
  EXPECT_STREQ(JobStateName(v1::CANCELLED), "cancelled");
  EXPECT_STREQ(JobStateName(v1::JOB_STATE_UNSPECIFIED), "unspecified");
}

TEST(ApiNamesTest, TaskKindsAreLowerCase) {
  EXPECT_STREQ(TaskKindName(v1::Task::DESCRIBE), "describe");
  EXPECT_STREQ(TaskKindName(v1::Task::EVALUATE), "evaluate");
  EXPECT_STREQ(TaskKindName(v1::Task::FINALIZE), "finalize");
  EXPECT_STREQ(TaskKindName(v1::Task::KIND_UNSPECIFIED), "unknown");
}

}  // namespace
}  // namespace shrink
