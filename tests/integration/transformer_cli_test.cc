// The transformer path end to end through the CLI, as a user runs it: train a
// tiny BERT / GPT-2 on the built-in text tasks, compress it with `shrink compress`
// (embedded coordinator + worker), and load the result back with `shrink eval`.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <ostream>
#include <string>

#include "common/files.h"
#include "tests/test_util/subprocess.h"

namespace shrink {
namespace {

using testing::BinPath;
using testing::RunCommand;

struct Case {
  const char* arch;
  const char* task;
  const char* quality;  // the metric the task reports: accuracy or perplexity
  const char* tokenizer_file;
};

// gtest prints the parameter by its architecture rather than as raw bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.arch << " on " << c.task; }

class TransformerCliTest : public ::testing::TestWithParam<Case> {};

TEST_P(TransformerCliTest, TrainCompressAndEvalRoundTrip) {
  const Case& c = GetParam();
  std::string dir = *MakeTempDir("shrink-transformer-cli-");
  std::string model = dir + "/model";
  auto trained = RunCommand({BinPath("shrink"), "train", "--arch", c.arch, "--data", c.task, "--preset", "tiny",
                             "--epochs", "1", "--max-examples", "400", "--vocab-size", "600", "--threads", "1",
                             "--out", model});
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  ASSERT_TRUE(PathExists(model + "/" + c.tokenizer_file));

  std::string out = dir + "/small";
  auto compressed = RunCommand({BinPath("shrink"), "compress", "--model", model, "--task", c.task,
                                "--target-size", "0.6", "--min-retention", "0.1", "--budget", "2", "--search",
                                "random", "--seed", "1", "--out", out, "--json", "--state", dir + "/state"});
  ASSERT_EQ(compressed.exit_code, 0) << compressed.err;
  auto result = nlohmann::json::parse(compressed.out);
  EXPECT_EQ(result["state"], "succeeded");
  EXPECT_EQ(result["evaluated"], 2);
  EXPECT_LE(result["size_ratio"].get<double>(), 0.6);
  // The result reports the task's own figure for both models, and only that one.
  const char* other = std::string(c.quality) == "accuracy" ? "perplexity" : "accuracy";
  EXPECT_GT(result[c.quality].get<double>(), 0.0) << result.dump();
  EXPECT_GT(result["baseline"][c.quality].get<double>(), 0.0) << result.dump();
  EXPECT_FALSE(result.contains(other) || result["baseline"].contains(other)) << result.dump();
  // The tokenizer travels with the compressed model, so the output is usable on its own.
  EXPECT_TRUE(PathExists(out + "/" + c.tokenizer_file));

  auto evaluated = RunCommand({BinPath("shrink"), "eval", "--model", out, "--task", c.task, "--json", "--threads",
                               "1"});
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.err;
  auto eval = nlohmann::json::parse(evaluated.out);
  EXPECT_EQ(eval["bytes"], result["bytes"]);
  ASSERT_TRUE(eval.contains(c.quality)) << eval.dump();
  EXPECT_GT(eval[c.quality].get<double>(), 0.0);
  RemoveAll(dir);
}

INSTANTIATE_TEST_SUITE_P(Families, TransformerCliTest,
                         ::testing::Values(Case{"bert", "fortunes-topic", "accuracy", "vocab.txt"},
                                           Case{"bert", "wordnet-lexname", "accuracy", "vocab.txt"},
                                           Case{"gpt2", "fortunes-lm", "perplexity", "merges.txt"}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string name = std::string(info.param.arch) + "_" + info.param.task;
                           for (char& ch : name) ch = ch == '-' ? '_' : ch;
                           return name;
                         });

}  // namespace
}  // namespace shrink
