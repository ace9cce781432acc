// `shrink pretrain` as a user runs it, on the Debian corpus (dict-gcide, wordnet-base,
// fortunes): a tiny BERT pauses, resumes to the end, writes a Hugging Face pretraining folder,
// and `shrink train --init` fine-tunes it on wordnet-lexname.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "common/files.h"
#include "tests/test_util/subprocess.h"

namespace shrink {
namespace {

using ::testing::HasSubstr;
using testing::BinPath;
using testing::RunCommand;

std::vector<std::string> With(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

TEST(PretrainCliTest, PretrainsOnTheDebianCorpusPausesResumesAndFineTunes) {
  const std::string dir = *MakeTempDir("shrink-pretrain-cli-");
  const std::string out = dir + "/bert";
  const std::vector<std::string> pretrain = {BinPath("shrink"), "pretrain", "--arch", "bert", "--preset", "tiny",
                                             "--vocab-size", "1000", "--vocab-documents", "4000", "--max-length", "32",
                                             "--batch-size", "8", "--steps", "6", "--threads", "1", "--out", out};
  auto paused = RunCommand(With(pretrain, {"--pause-after", "3"}));
  ASSERT_EQ(paused.exit_code, 0) << paused.err;
  EXPECT_THAT(paused.out, HasSubstr("paused at step 3 of 6"));
  EXPECT_THAT(paused.err, HasSubstr("corpus gcide: "));
  EXPECT_THAT(paused.err, HasSubstr("held-out task texts"));
  EXPECT_THAT(paused.err, HasSubstr("tokens/s"));
  EXPECT_FALSE(PathExists(out + "/model.safetensors"));

  auto resumed = RunCommand(With(pretrain, {"--resume"}));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_THAT(resumed.err, HasSubstr("resuming at step 3"));
  EXPECT_THAT(resumed.out, HasSubstr("pretrained bert"));
  auto record = ReadFile(out + "/pretraining.json");
  ASSERT_TRUE(record.ok());
  auto json = nlohmann::json::parse(*record);
  ASSERT_EQ(json["corpus_sources"].size(), 3u);
  EXPECT_EQ(json["corpus_sources"][0]["name"], "gcide");
  EXPECT_GT(json["corpus_sources"][0]["documents"].get<int64_t>(), 100000);  // GCIDE's sense paragraphs
  EXPECT_GT(json["corpus_sources"][1]["held_out_task_texts_dropped"].get<int64_t>(), 0);
  EXPECT_EQ(json["tokens_seen"], 6 * 8 * 32);
  EXPECT_TRUE(PathExists(out + "/vocab.txt"));

  auto tuned = RunCommand({BinPath("shrink"), "train", "--arch", "bert", "--data", "wordnet-lexname", "--init", out,
                           "--epochs", "1", "--max-examples", "300", "--threads", "1", "--out", dir + "/tuned"});
  ASSERT_EQ(tuned.exit_code, 0) << tuned.err;
  EXPECT_THAT(tuned.out, HasSubstr("trained bert on wordnet-lexname"));

  auto missing = RunCommand({BinPath("shrink"), "pretrain", "--corpus", "gcide," + dir + "/novels.txt", "--out",
                             dir + "/none"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("novels.txt is neither gcide, wordnet, fortunes nor an existing text file"));
  EXPECT_FALSE(PathExists(dir + "/none"));
  RemoveAll(dir);
}

}  // namespace
}  // namespace shrink
