#include "common/args.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace shrink {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const std::vector<FlagSpec> kSpecs = {
    {"port", "port to listen on", "8080", false},
    {"name", "job name", "", false},
    {"ratio", "target size ratio", "0.5", false},
    {"json", "print JSON", "", true},
    {"verbose", "log more", "", true},
};

// Parses `words` as if they followed the program name in argv.
absl::StatusOr<Args> ParseWords(const std::vector<std::string>& words,
                                const std::vector<FlagSpec>& specs = kSpecs) {
  std::vector<std::string> storage = {"prog"};
  storage.insert(storage.end(), words.begin(), words.end());
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  return Args::Parse(static_cast<int>(storage.size()), argv.data(), 1, specs);
}

TEST(ArgsTest, SpaceSeparatedValue) {
  auto args = ParseWords({"--name", "resnet"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_TRUE(args->Has("name"));
  EXPECT_EQ(args->Get("name"), "resnet");
}

TEST(ArgsTest, EqualsSeparatedValue) {
  auto args = ParseWords({"--name=resnet"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->Get("name"), "resnet");
}

TEST(ArgsTest, EqualsValueMayContainEqualsAndBeEmpty) {
  auto args = ParseWords({"--name=a=b", "--port="});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->Get("name"), "a=b");
  EXPECT_TRUE(args->Has("port"));
  EXPECT_EQ(args->Get("port"), "");
}

TEST(ArgsTest, SpaceSeparatedValueMayLookLikeANegativeNumber) {
  auto args = ParseWords({"--port", "-5"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(*args->GetInt("port"), -5);
}

TEST(ArgsTest, BooleanFlagIsTrueWhenGivenAndFalseWhenAbsent) {
  auto args = ParseWords({"--json"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_TRUE(args->GetBool("json"));
  EXPECT_FALSE(args->GetBool("verbose"));
  EXPECT_FALSE(args->Has("verbose"));
}

TEST(ArgsTest, BooleanFlagDoesNotConsumeTheNextWord) {
  auto args = ParseWords({"--json", "file.txt"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_TRUE(args->GetBool("json"));
  EXPECT_THAT(args->positionals(), ElementsAre("file.txt"));
}

TEST(ArgsTest, PositionalsKeepTheirOrderAroundFlags) {
  auto args = ParseWords({"submit", "--port", "9000", "model-dir", "--json", "-x", "last"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_THAT(args->positionals(), ElementsAre("submit", "model-dir", "-x", "last"));
  EXPECT_EQ(args->Get("port"), "9000");
}

TEST(ArgsTest, ParsingStartsAtFirst) {
  std::vector<std::string> storage = {"shrink", "compress", "--port", "1", "pos"};
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  auto args = Args::Parse(static_cast<int>(argv.size()), argv.data(), 2, kSpecs);
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_THAT(args->positionals(), ElementsAre("pos"));
  EXPECT_EQ(args->Get("port"), "1");
}

TEST(ArgsTest, NoArgumentsGivesDefaultsAndNoPositionals) {
  auto args = ParseWords({});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_THAT(args->positionals(), IsEmpty());
  EXPECT_FALSE(args->Has("port"));
  EXPECT_EQ(args->Get("port"), "8080");
  EXPECT_EQ(args->Get("name"), "");
  EXPECT_EQ(*args->GetInt("port"), 8080);
  EXPECT_DOUBLE_EQ(*args->GetDouble("ratio"), 0.5);
}

TEST(ArgsTest, GivenValueOverridesDefault) {
  auto args = ParseWords({"--port", "9090"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->Get("port"), "9090");
}

TEST(ArgsTest, LastOccurrenceWins) {
  auto args = ParseWords({"--port", "1", "--port=2"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(*args->GetInt("port"), 2);
}

TEST(ArgsTest, GetOfAnUndeclaredNameIsEmpty) {
  auto args = ParseWords({});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->Get("nope"), "");
  EXPECT_FALSE(args->Has("nope"));
}

TEST(ArgsTest, UnknownFlagIsAnErrorNamingIt) {
  auto args = ParseWords({"--bogus", "1"});
  ASSERT_FALSE(args.ok());
  EXPECT_EQ(args.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(args.status().message(), HasSubstr("--bogus"));
}

TEST(ArgsTest, UnknownFlagWithEqualsNamesOnlyTheFlag) {
  auto args = ParseWords({"--bogus=7"});
  ASSERT_FALSE(args.ok());
  EXPECT_THAT(args.status().message(), HasSubstr("--bogus"));
  EXPECT_THAT(args.status().message(), ::testing::Not(HasSubstr("=7")));
}

TEST(ArgsTest, MissingValueAtEndIsAnErrorNamingTheFlag) {
  auto args = ParseWords({"--name"});
  ASSERT_FALSE(args.ok());
  EXPECT_EQ(args.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(args.status().message(), HasSubstr("--name"));
  EXPECT_THAT(args.status().message(), HasSubstr("value"));
}

TEST(ArgsTest, BooleanFlagGivenAValueIsAnError) {
  auto args = ParseWords({"--json=true"});
  ASSERT_FALSE(args.ok());
  EXPECT_EQ(args.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(args.status().message(), HasSubstr("--json"));
  EXPECT_THAT(args.status().message(), HasSubstr("no value"));
}

TEST(ArgsTest, GetIntParsesIntegers) {
  auto args = ParseWords({"--port=65535"});
  ASSERT_TRUE(args.ok()) << args.status();
  auto port = args->GetInt("port");
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_EQ(*port, 65535);
}

TEST(ArgsTest, GetIntErrorNamesFlagAndValue) {
  auto args = ParseWords({"--port", "12abc"});
  ASSERT_TRUE(args.ok()) << args.status();
  auto port = args->GetInt("port");
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(port.status().message(), HasSubstr("--port"));
  EXPECT_THAT(port.status().message(), HasSubstr("12abc"));
}

TEST(ArgsTest, GetIntRejectsAFraction) {
  auto args = ParseWords({"--port", "1.5"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_FALSE(args->GetInt("port").ok());
}

TEST(ArgsTest, GetIntOfAbsentFlagWithoutDefaultIsAnError) {
  auto args = ParseWords({});
  ASSERT_TRUE(args.ok()) << args.status();
  auto value = args->GetInt("name");
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(value.status().message(), HasSubstr("--name"));
}

TEST(ArgsTest, GetDoubleParsesNumbers) {
  auto args = ParseWords({"--ratio=0.125"});
  ASSERT_TRUE(args.ok()) << args.status();
  auto ratio = args->GetDouble("ratio");
  ASSERT_TRUE(ratio.ok()) << ratio.status();
  EXPECT_DOUBLE_EQ(*ratio, 0.125);
}

TEST(ArgsTest, GetDoubleErrorNamesFlagAndValue) {
  auto args = ParseWords({"--ratio", "half"});
  ASSERT_TRUE(args.ok()) << args.status();
  auto ratio = args->GetDouble("ratio");
  ASSERT_FALSE(ratio.ok());
  EXPECT_EQ(ratio.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ratio.status().message(), HasSubstr("--ratio"));
  EXPECT_THAT(ratio.status().message(), HasSubstr("half"));
}

TEST(ArgsTest, FormatUsageListsEveryFlagWithHelp) {
  std::string usage = FormatUsage("shrink compress [flags] MODEL_DIR", kSpecs);
  EXPECT_EQ(usage.rfind("usage: shrink compress [flags] MODEL_DIR\n", 0), 0u) << usage;
  for (const auto& spec : kSpecs) {
    EXPECT_THAT(usage, HasSubstr("--" + spec.name)) << usage;
    EXPECT_THAT(usage, HasSubstr(spec.help)) << usage;
  }
}

TEST(ArgsTest, FormatUsageShowsDefaultsAndValuePlaceholders) {
  std::string usage = FormatUsage("prog", kSpecs);
  EXPECT_THAT(usage, HasSubstr("--port VALUE")) << usage;
  EXPECT_THAT(usage, HasSubstr("(default: 8080)")) << usage;
  EXPECT_THAT(usage, HasSubstr("(default: 0.5)")) << usage;
  EXPECT_THAT(usage, ::testing::Not(HasSubstr("--json VALUE"))) << usage;
  // One header line plus one line per flag.
  EXPECT_EQ(std::count(usage.begin(), usage.end(), '\n'), 1 + static_cast<int>(kSpecs.size()));
}

TEST(ArgsTest, FormatUsageOmitsEmptyDefault) {
  std::string usage = FormatUsage("prog", {{"name", "job name", "", false}});
  EXPECT_THAT(usage, ::testing::Not(HasSubstr("default"))) << usage;
}

}  // namespace
}  // namespace shrink
