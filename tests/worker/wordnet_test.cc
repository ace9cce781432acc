// The wordnet-lexname task: WordNet's data files parsed into gloss -> lexicographer file,
// on hand-written lines and on Debian's wordnet-base itself.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "common/files.h"
#include "common/task_files.h"
#include "worker/data/wordnet.h"

namespace shrink::worker {
namespace {

using ::testing::HasSubstr;

// Two licence lines, then synsets in wndb(5WN) form (w_cnt in hex, pointers, verb frames).
constexpr char kNounLines[] =
    "  1 This software and database is being provided to you, the LICENSEE, by\n"
    "  2 Princeton University under the following license.\n"
    "02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 001 @ 02083346 n 0000 | a member of the genus "
    "Canis; \"the dog barked all night\"  \n"
    "07679356 13 n 01 bread 0 000 | food made from dough of flour or meal  \n"
    "09999999 13 n 01 loaf 0 000 | Food made from  dough of flour or meal\n";

TEST(WordnetTest, ParsesSynsetLinesAndSkipsTheLicence) {
  auto synsets = ParseWordnetData(kNounLines, "data.noun");
  ASSERT_TRUE(synsets.ok()) << synsets.status();
  ASSERT_EQ(synsets->size(), 3u);
  EXPECT_EQ(WordnetLexnames()[(*synsets)[0].lexname], "noun.animal");
  EXPECT_EQ((*synsets)[0].gloss, "a member of the genus Canis; \"the dog barked all night\"");
  EXPECT_EQ(WordnetLexnames()[(*synsets)[1].lexname], "noun.food");
  const std::string verb = "01166351 34 v 02 eat 0 feed 1 001 @ 01157517 v 0000 01 + 08 00 | take in solid food\n";
  auto verbs = ParseWordnetData(verb, "data.verb");
  ASSERT_TRUE(verbs.ok()) << verbs.status();
  EXPECT_EQ(WordnetLexnames()[(*verbs)[0].lexname], "verb.consumption");
}

TEST(WordnetTest, MalformedLinesNameTheFileAndLine) {
  auto no_gloss = ParseWordnetData("  licence\n02084071 05 n 01 dog 0 000\n", "/x/data.noun");
  ASSERT_FALSE(no_gloss.ok());
  EXPECT_THAT(no_gloss.status().message(), HasSubstr("/x/data.noun line 2: no gloss"));
  auto bad_file = ParseWordnetData("02084071 45 n 01 dog 0 000 | a dog\n", "data.noun");
  ASSERT_FALSE(bad_file.ok());
  EXPECT_THAT(bad_file.status().message(), HasSubstr("lexicographer file 45"));
  auto not_synset = ParseWordnetData("hello world | a dog\n", "data.noun");
  ASSERT_FALSE(not_synset.ok());
  EXPECT_THAT(not_synset.status().message(), HasSubstr("line 1: not a synset line"));
}

TEST(WordnetTest, GlossesSharedAcrossFilesAreDroppedAndDuplicatesKeptOnce) {
  const std::string dir = *MakeTempDir("shrink-wordnet-");
  std::map<std::string, std::string> files;
  const std::map<std::string, std::string> contents = {
      {"data.noun", kNounLines},
      {"data.verb", "01166351 34 v 01 eat 0 000 | take in solid food\n"
                    "01168468 34 v 01 dine 0 000 | a member of the genus canis; \"the dog barked all night\"\n"},
      {"data.adj", "00001740 00 a 01 able 0 000 | having the necessary means\n"},
      {"data.adv", "00001740 02 r 01 barely 0 000 | only just\n"}};
  for (const auto& [name, text] : contents) {
    files[name] = dir + "/" + name;
    ASSERT_TRUE(WriteFileAtomic(files[name], text).ok());
  }
  auto data = LoadWordnetLexname(files);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->task, "wordnet-lexname");
  // The dog's gloss is both noun.animal and verb.consumption (up to case): dropped, and with it
  // noun.animal, which had nothing else. bread and loaf normalise alike: one text.
  EXPECT_EQ(data->label_names, (std::vector<std::string>{"adj.all", "adv.all", "noun.food", "verb.consumption"}));
  EXPECT_EQ(data->train.size() + data->validation.size() + data->test.size(), 4u);

  files.erase("data.adv");
  auto missing = LoadWordnetLexname(files);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("data.adv"));
  EXPECT_THAT(missing.status().message(), HasSubstr("wordnet-base"));
  RemoveAll(dir);
}

TEST(WordnetTest, DebiansWordnetMakesA45ClassTaskWithDisjointSplits) {
  auto files = LocalTaskFiles("wordnet-lexname");
  ASSERT_TRUE(files.ok()) << files.status();  // scripts/install-deps.sh installs wordnet-base
  auto data = LoadWordnetLexname(*files);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->label_names.size(), 45u);
  const size_t total = data->train.size() + data->validation.size() + data->test.size();
  EXPECT_GT(total, 100000u);  // 117,659 synsets less shared glosses
  EXPECT_GT(data->test.size(), 10000u);
  std::set<std::string> train;
  for (const auto& e : data->train) train.insert(NormalizeText(e.text));
  for (const auto& e : data->test) EXPECT_EQ(train.count(NormalizeText(e.text)), 0u) << e.text;
  std::set<int64_t> labels;
  for (const auto& e : data->test) labels.insert(e.label);
  EXPECT_GE(labels.size(), 40u);  // every sizeable file reaches the test split
}

}  // namespace
}  // namespace shrink::worker
