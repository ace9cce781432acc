// Vocabulary learning: the BPE learner on the classic worked example, and the
// WordPiece / byte-level BPE builders (determinism, coverage, save and reload).
#include "worker/tokenizers/vocab_learner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "worker/tokenizers/byte_bpe.h"

namespace shrink::worker {
namespace {

using ::testing::ElementsAre;
using Merge = std::pair<std::string, std::string>;

std::vector<std::string> Chars(const std::string& word) {
  std::vector<std::string> out;
  for (char c : word) out.emplace_back(1, c);
  return out;
}

TEST(LearnBpeMergesTest, MostFrequentPairFirstTiesLexicographic) {
  // Sennrich et al.'s example: low x5, lower x2, newest x6, widest x3.
  auto words = [] {
    return std::vector<std::pair<std::vector<std::string>, int64_t>>{
        {Chars("low"), 5}, {Chars("lower"), 2}, {Chars("newest"), 6}, {Chars("widest"), 3}};
  };
  // e-s and s-t both occur 9 times: "e" < "s". Then l-o / o-w (7): "l" < "o".
  // Then e-w, n-e, w-est (6): "e" first; then ew-est before n-ew; then n-ewest.
  const std::vector<Merge> expected = {{"e", "s"}, {"es", "t"}, {"l", "o"}, {"lo", "w"},
                                       {"e", "w"}, {"ew", "est"}, {"n", "ewest"}};
  EXPECT_EQ(LearnBpeMerges(words(), 7, 2, false), expected);
  // Every pair left occurs at most 3 times.
  EXPECT_EQ(LearnBpeMerges(words(), 100, 4, false), expected);
  EXPECT_EQ(LearnBpeMerges(words(), 2, 1, false), (std::vector<Merge>{{"e", "s"}, {"es", "t"}}));
  // Overlapping pairs merge left to right: "aaa" -> "aa a".
  EXPECT_EQ(LearnBpeMerges({{Chars("aaa"), 3}}, 5, 1, false), (std::vector<Merge>{{"a", "a"}, {"aa", "a"}}));
  // WordPiece names: "##a" + "##b" -> "##ab".
  auto wp = LearnBpeMerges({{{"x", "##a", "##b"}, 4}}, 1, 2, true);
  EXPECT_THAT(wp, ElementsAre(Merge{"##a", "##b"}));
}

std::vector<std::string> Corpus() {
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) {
    texts.push_back(absl::StrCat("The quick brown fox jumps over the lazy dog number ", i,
                                 ". Caf\xc3\xa9 na\xc3\xafve! It's the fox's day."));
  }
  texts.push_back("A rare word: zyzzyva \xf0\x9f\x98\x80 \xe6\x97\xa5\xe6\x9c\xac");
  return texts;
}

TEST(BuildWordPieceTest, LearnsFrequentWordsDeterministically) {
  auto tok = BuildWordPieceTokenizer(Corpus(), 120, true);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_LE((*tok)->VocabSize(), 120);
  EXPECT_GT((*tok)->VocabSize(), 60);
  EXPECT_EQ((*tok)->IdToToken(0), "[PAD]");
  EXPECT_EQ((*tok)->IdToToken(4), "[MASK]");
  const SpecialTokens& s = (*tok)->Specials();
  EXPECT_EQ(s.pad, 0);
  EXPECT_EQ(s.unk, 1);
  EXPECT_EQ(s.cls, 2);
  EXPECT_EQ(s.sep, 3);
  EXPECT_EQ(s.mask, 4);
  // Frequent words become single tokens; lower-casing and accent stripping apply.
  EXPECT_THAT((*tok)->Tokenize("The fox"), ElementsAre("the", "fox"));
  EXPECT_THAT((*tok)->Tokenize("CAF\xc3\x89"), ElementsAre("cafe"));
  // Every character of the corpus is covered: no [UNK] on the training text.
  for (const std::string& text : Corpus()) {
    for (int64_t id : (*tok)->Encode(text)) EXPECT_NE(id, s.unk) << text;
  }
  auto again = BuildWordPieceTokenizer(Corpus(), 120, true);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ((*again)->VocabSize(), (*tok)->VocabSize());
  for (int64_t i = 0; i < (*tok)->VocabSize(); ++i) EXPECT_EQ((*again)->IdToToken(i), (*tok)->IdToToken(i));

  auto dir = MakeTempDir("vocab-wp");
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE((*tok)->Save(*dir).ok());
  auto loaded = LoadTokenizer(*dir);
  RemoveAll(*dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  for (const std::string& text : Corpus()) EXPECT_EQ((*loaded)->Encode(text), (*tok)->Encode(text));
}

TEST(BuildWordPieceTest, TooSmallOrEmptyIsAnError) {
  EXPECT_FALSE(BuildWordPieceTokenizer(Corpus(), 5, true).ok());
  EXPECT_FALSE(BuildWordPieceTokenizer({"", "  "}, 100, true).ok());
  // When the characters do not fit, the most frequent ones are kept.
  auto tiny = BuildWordPieceTokenizer(Corpus(), 20, false);
  ASSERT_TRUE(tiny.ok()) << tiny.status();
  EXPECT_EQ((*tiny)->VocabSize(), 20);
}

TEST(BuildByteBpeTest, LearnsMergesOverBytesAndRoundTrips) {
  auto tok = BuildByteBpeTokenizer(Corpus(), 300);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_LE((*tok)->VocabSize(), 300);
  EXPECT_GT((*tok)->VocabSize(), 280);
  // GPT-2's byte order: "!" first, the unprintable bytes (Ā = byte 0) from 188.
  EXPECT_EQ((*tok)->IdToToken(0), "!");
  EXPECT_EQ((*tok)->IdToToken(188), "\xc4\x80");
  const int64_t eot = (*tok)->VocabSize() - 1;
  EXPECT_EQ((*tok)->IdToToken(eot), "<|endoftext|>");
  EXPECT_EQ((*tok)->Specials().eos, eot);
  EXPECT_EQ((*tok)->Specials().bos, eot);
  EXPECT_THAT((*tok)->Tokenize(" the"), ElementsAre("\xc4\xa0the"));
  for (const std::string& text : Corpus()) EXPECT_EQ((*tok)->Decode((*tok)->Encode(text)), text);
  EXPECT_LT((*tok)->Encode(Corpus()[0]).size(), Corpus()[0].size() / 2);

  auto again = BuildByteBpeTokenizer(Corpus(), 300);
  ASSERT_TRUE(again.ok());
  for (int64_t i = 0; i < (*tok)->VocabSize(); ++i) EXPECT_EQ((*again)->IdToToken(i), (*tok)->IdToToken(i));

  auto dir = MakeTempDir("vocab-bpe");
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE((*tok)->Save(*dir).ok());
  auto loaded = LoadTokenizer(*dir);
  RemoveAll(*dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->Specials().eos, eot);
  for (const std::string& text : Corpus()) EXPECT_EQ((*loaded)->Encode(text), (*tok)->Encode(text));
  EXPECT_FALSE(BuildByteBpeTokenizer(Corpus(), 256).ok());
  EXPECT_FALSE(BuildByteBpeTokenizer({}, 1000).ok());
}

}  // namespace
}  // namespace shrink::worker
