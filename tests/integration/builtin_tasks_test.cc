// The client's built-in tasks: the data files it uploads for each, as the
// worker's loaders read them back from a name -> path map.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "client/remote/coordinator_client.h"
#include "worker/data/text_data.h"
#include "worker/data/wordnet.h"

namespace shrink::client {
namespace {

using ::testing::HasSubstr;

TEST(BuiltinTaskFilesTest, FortunesTasksUploadEveryCategoryFile) {
  for (const char* task : {"fortunes-topic", "fortunes-lm"}) {
    auto files = BuiltinTaskFiles(task);
    ASSERT_TRUE(files.ok()) << files.status();
    EXPECT_GE(files->size(), 40u);
    std::map<std::string, std::string> by_name(files->begin(), files->end());
    EXPECT_EQ(by_name.size(), files->size());
    EXPECT_TRUE(by_name.count("computers"));
    auto data = std::string(task) == "fortunes-lm" ? worker::LoadFortunesLm(by_name)
                                                    : worker::LoadFortunesTopic(by_name);
    ASSERT_TRUE(data.ok()) << data.status();
    EXPECT_EQ(data->task, task);
  }
}

TEST(BuiltinTaskFilesTest, WordnetUploadsItsFourDataFiles) {
  auto files = BuiltinTaskFiles("wordnet-lexname");
  ASSERT_TRUE(files.ok()) << files.status();
  std::map<std::string, std::string> by_name(files->begin(), files->end());
  EXPECT_EQ(by_name.size(), 4u);
  EXPECT_TRUE(by_name.count("data.noun"));
  auto data = worker::LoadWordnetLexname(by_name);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->label_names.size(), 45u);
}

TEST(BuiltinTaskFilesTest, UnknownTaskNamesTheKnownOnes) {
  auto files = BuiltinTaskFiles("imagenet");
  ASSERT_FALSE(files.ok());
  EXPECT_THAT(files.status().message(), HasSubstr("fortunes-topic"));
  EXPECT_THAT(files.status().message(), HasSubstr("wordnet-lexname"));
}

}  // namespace
}  // namespace shrink::client
