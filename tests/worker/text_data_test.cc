// Text datasets: fortune parsing, deterministic disjoint splits, the two
// fortunes tasks (on files written here and on Debian's real corpus), and users'
// JSONL / TSV / plain-text files.
#include "worker/data/text_data.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "worker/data/task_data.h"

namespace shrink::worker {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Every normalized text of `data` must be in exactly one split, once.
void ExpectDisjointSplits(const TextDataset& data) {
  std::set<std::string> seen;
  for (const auto* split : {&data.train, &data.validation, &data.test}) {
    for (const TextExample& e : *split) {
      EXPECT_TRUE(seen.insert(NormalizeText(e.text)).second) << "text in two places: " << e.text;
    }
  }
}

class TempDir {
 public:
  TempDir() : path_(*MakeTempDir("text-data")) {}
  ~TempDir() { RemoveAll(path_); }
  std::string Write(const std::string& name, const std::string& contents) const {
    const std::string path = path_ + "/" + name;
    EXPECT_TRUE(WriteFileAtomic(path, contents).ok());
    return path;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A fortune file with entries "<prefix> 0" .. "<prefix> n-1".
std::string FortuneFile(const std::string& prefix, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) absl::StrAppend(&out, prefix, " ", i, "\n\t\t-- someone\n%\n");
  return out;
}

TEST(TextDataTest, ParsesFortuneEntries) {
  EXPECT_THAT(ParseFortunes("a\n%\n\n  \nb\nc  \n%\n%\r\nlast\n"), ElementsAre("a", "b\nc", "last"));
  EXPECT_THAT(ParseFortunes("only one"), ElementsAre("only one"));
  EXPECT_THAT(ParseFortunes("100%\n%\n50% off"), ElementsAre("100%", "50% off"));
  EXPECT_TRUE(ParseFortunes("%\n%\n").empty());
}

TEST(TextDataTest, NormalizesAndSplitsDeterministically) {
  EXPECT_EQ(NormalizeText("  Hello\t\nWorld  "), "hello world");
  EXPECT_EQ(SplitOf("hello world"), SplitOf(NormalizeText("HELLO   world")));
  int counts[3] = {0, 0, 0};
  for (int i = 0; i < 20000; ++i) ++counts[static_cast<int>(SplitOf(absl::StrCat("text number ", i)))];
  EXPECT_NEAR(counts[0] / 20000.0, 0.8, 0.02);
  EXPECT_NEAR(counts[1] / 20000.0, 0.1, 0.015);
  EXPECT_NEAR(counts[2] / 20000.0, 0.1, 0.015);
}

TEST(TextDataTest, FortunesTopicTakesTheLargestTopicalCategories) {
  TempDir dir;
  dir.Write("small", FortuneFile("small", 30));
  dir.Write("medium", FortuneFile("medium", 60) + "shared text\n%\nMedium 0\n  -- SOMEONE\n%\n");
  dir.Write("large", FortuneFile("large", 90) + "Shared  TEXT\n%\n");
  dir.Write("cookie", FortuneFile("cookie", 500));  // generic: never a class
  dir.Write("large.dat", "binary index");
  dir.Write("small.u8", "duplicate");
  auto files = DebianFortunesFiles(dir.path());
  EXPECT_EQ(files.size(), 4u);
  EXPECT_FALSE(files.count("large.dat") || files.count("small.u8"));
  auto data = LoadFortunesTopic(files, 2);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->task, "fortunes-topic");
  EXPECT_THAT(data->label_names, ElementsAre("large", "medium"));
  const size_t total = data->train.size() + data->validation.size() + data->test.size();
  // "shared text" is in two categories and dropped; "Medium 0" duplicates "medium 0".
  EXPECT_EQ(total, 150u);
  int per_label[2] = {0, 0};
  for (const auto* split : {&data->train, &data->validation, &data->test}) {
    for (const TextExample& e : *split) {
      ASSERT_TRUE(e.label == 0 || e.label == 1);
      ++per_label[e.label];
      EXPECT_EQ(e.text.rfind(data->label_names[e.label], 0), 0u) << e.text;
      EXPECT_EQ(e.text.find("shared"), std::string::npos);
    }
  }
  EXPECT_EQ(per_label[0], 90);
  EXPECT_EQ(per_label[1], 60);
  ExpectDisjointSplits(*data);
  EXPECT_FALSE(data->validation.empty());
  EXPECT_FALSE(data->test.empty());

  auto again = LoadFortunesTopic(files, 2);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->train.size(), data->train.size());
  for (size_t i = 0; i < data->train.size(); ++i) EXPECT_EQ(again->train[i].text, data->train[i].text);

  EXPECT_THAT(LoadFortunesTopic(files, 4).status().message(), HasSubstr("only 3 topical"));
  files["missing"] = dir.path() + "/missing";
  EXPECT_THAT(LoadFortunesTopic(files, 2).status().message(), HasSubstr("fortune file 'missing'"));
  EXPECT_EQ(LoadFortunesLm({}).status().code(), absl::StatusCode::kNotFound);
}

TEST(TextDataTest, FortunesLmUsesEveryFileOnce) {
  TempDir dir;
  dir.Write("a", FortuneFile("alpha", 40) + "same\n%\n");
  dir.Write("b", FortuneFile("beta", 40) + "SAME\n%\n");
  auto data = LoadFortunesLm(DebianFortunesFiles(dir.path()));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_TRUE(data->IsLanguageModelling());
  EXPECT_EQ(data->train.size() + data->validation.size() + data->test.size(), 81u);
  for (const TextExample& e : data->train) EXPECT_EQ(e.label, -1);
  ExpectDisjointSplits(*data);
}

TEST(TextDataTest, DebianCorpusGivesBothTasks) {
  auto files = DebianFortunesFiles();
  ASSERT_GE(files.size(), 40u) << "install the Debian packages fortunes and fortunes-min";
  for (const auto& [name, path] : files) EXPECT_EQ(name.find('.'), std::string::npos) << name;
  auto topic = LoadFortunesTopic(files);
  ASSERT_TRUE(topic.ok()) << topic.status();
  EXPECT_EQ(topic->label_names.size(), 8u);
  EXPECT_GT(topic->train.size(), 4000u);
  EXPECT_GT(topic->validation.size(), 400u);
  EXPECT_GT(topic->test.size(), 400u);
  ExpectDisjointSplits(*topic);
  auto lm = LoadFortunesLm(files);
  ASSERT_TRUE(lm.ok()) << lm.status();
  EXPECT_GT(lm->train.size() + lm->validation.size() + lm->test.size(), 15000u);
  ExpectDisjointSplits(*lm);
}

// Calibration and distillation take a SpreadSample of the training split, which the loaders
// group by label: the first examples alone would teach a compressed model one topic.
TEST(TextDataTest, SpreadSampleCoversEveryLabelOfALabelOrderedSplit) {
  auto topic = LoadFortunesTopic(DebianFortunesFiles());
  ASSERT_TRUE(topic.ok()) << topic.status();
  std::set<int64_t> first_labels, spread_labels;
  for (size_t i = 0; i < 128; ++i) first_labels.insert(topic->train[i].label);
  ASSERT_EQ(first_labels.size(), 1u) << "the split is no longer grouped by label; this test guards nothing";
  std::vector<const TextExample*> sample = SpreadSample(topic->train, 128);
  ASSERT_EQ(sample.size(), 128u);
  for (size_t i = 0; i < sample.size(); ++i) {
    spread_labels.insert(sample[i]->label);
    if (i > 0) EXPECT_LT(sample[i - 1], sample[i]) << "each example once, in order";
  }
  EXPECT_EQ(spread_labels.size(), topic->label_names.size());
  EXPECT_EQ(SpreadSample(topic->train, topic->train.size() + 5).size(), topic->train.size());
  EXPECT_TRUE(SpreadSample({}, 4).empty());
}

TEST(TextDataTest, ClassificationJsonlWithStringLabelsAndExplicitSplits) {
  TempDir dir;
  std::string path = dir.Write("data.jsonl",
                               "{\"text\": \"good movie\", \"label\": \"pos\"}\n"
                               "\n"
                               "{\"text\": \"bad movie\", \"label\": \"neg\", \"split\": \"test\"}\n"
                               "{\"text\": \"GOOD  movie\", \"label\": \"neg\"}\n"
                               "{\"text\": \"fine\", \"label\": \"meh\", \"split\": \"dev\"}\n"
                               "{\"text\": \"great\", \"label\": \"pos\", \"split\": \"train\"}\n");
  auto data = LoadClassificationFile(path);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->task, "classification");
  EXPECT_THAT(data->label_names, ElementsAre("meh", "neg", "pos"));
  ASSERT_EQ(data->test.size() + data->train.size() + data->validation.size(), 4u);  // duplicate dropped
  ASSERT_EQ(data->validation.size() >= 1, true);
  bool found_test = false;
  for (const TextExample& e : data->test) {
    if (e.text == "bad movie") found_test = (e.label == 1);
  }
  EXPECT_TRUE(found_test);
  ExpectDisjointSplits(*data);
}

TEST(TextDataTest, ClassificationTsvWithHeaderAndIntegerLabels) {
  TempDir dir;
  std::string path = dir.Write("data.tsv", "text\tlabel\nhello\tthere\t1\nbye\t0\r\nok\t2\n");
  auto data = LoadClassificationFile(path);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(data->label_names, ElementsAre("0", "1", "2"));
  std::map<std::string, int64_t> labels;
  for (const auto* split : {&data->train, &data->validation, &data->test}) {
    for (const TextExample& e : *split) labels[e.text] = e.label;
  }
  EXPECT_EQ(labels["hello\tthere"], 1);  // the label is after the last tab
  EXPECT_EQ(labels["bye"], 0);
  EXPECT_EQ(labels["ok"], 2);
}

TEST(TextDataTest, TheTaskNamesEndingPicksTheParserNotTheFilesPath) {
  // A worker's blobs have no extension: the task's name decides.
  TempDir dir;
  std::string blob = dir.Write("blob-1", "good\tpos\nbad\tneg\n");
  auto tsv = LoadTaskData("reviews.tsv", {{"reviews.tsv", blob}});
  ASSERT_TRUE(tsv.ok()) << tsv.status();
  EXPECT_THAT(tsv->text->label_names, ElementsAre("neg", "pos"));
  auto jsonl = LoadTaskData("reviews.jsonl", {{"reviews.jsonl", blob}});
  ASSERT_FALSE(jsonl.ok());
  EXPECT_THAT(jsonl.status().message(), AllOf(HasSubstr(blob + " line 1"), HasSubstr("invalid JSON")));
  auto text = LoadTaskData("notes.txt", {{"notes.jsonl", dir.Write("blob-2", "one paragraph\n\nanother one\n")}});
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_TRUE(text->text->IsLanguageModelling());
}

TEST(TextDataTest, ClassificationErrorsNameTheLine) {
  auto message = [](const std::string& contents, bool jsonl) {
    auto data = ParseClassification(contents, jsonl, "f");
    EXPECT_FALSE(data.ok());
    return std::string(data.status().message());
  };
  EXPECT_THAT(message("{\"text\": \"a\", \"label\": 1}\n{\"text\": 3, \"label\": 1}\n", true),
              HasSubstr("f line 2: \"text\" must be a string"));
  EXPECT_THAT(message("{\"text\": \"a\"}\n", true), HasSubstr("f line 1: \"label\""));
  EXPECT_THAT(message("{\"text\": \"a\", \"label\": 1\n", true), HasSubstr("f line 1: invalid JSON"));
  EXPECT_THAT(message("[1]\n", true), HasSubstr("expected a JSON object"));
  EXPECT_THAT(message("{\"text\": \"a\", \"label\": 1, \"split\": \"x\"}\n", true), HasSubstr("\"split\""));
  EXPECT_THAT(message("a\t1\nno tab here\n", false), HasSubstr("f line 2: expected text<TAB>label"));
  EXPECT_THAT(message("a\t-1\nb\t1\n", false), HasSubstr("f line 1: label -1"));
  EXPECT_THAT(message("a\tx\nb\tx\n", false), HasSubstr("at least 2 labels"));
  EXPECT_THAT(message("", false), HasSubstr("no examples"));
  EXPECT_FALSE(LoadClassificationFile("/nonexistent/data.tsv").ok());
}

TEST(TextDataTest, PlainTextParagraphs) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 50; ++i) absl::StrAppend(&text, "Paragraph ", i, " line one\nline two\n\n  \n");
  absl::StrAppend(&text, "paragraph 0 LINE one line two\n");  // a duplicate up to case and spacing
  auto data = LoadPlainTextLm(dir.Write("corpus.txt", text));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->task, "lm");
  EXPECT_EQ(data->train.size() + data->validation.size() + data->test.size(), 50u);
  for (const TextExample& e : data->train) EXPECT_THAT(e.text, HasSubstr(" line one\nline two"));
  ExpectDisjointSplits(*data);
  EXPECT_THAT(ParsePlainTextLm("\n \n", "p").status().message(), HasSubstr("p: no training paragraphs"));
}

}  // namespace
}  // namespace shrink::worker
