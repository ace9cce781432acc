// WordPiece (BERT) tokenizer: tokenizations worked out by hand from HF's
// BasicTokenizer + WordpieceTokenizer on a small vocabulary written by the test.
#include "worker/tokenizers/wordpiece.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_join.h"
#include "common/files.h"
#include "worker/tokenizers/tokenizer.h"
#include "worker/tokenizers/normalize.h"

namespace shrink::worker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const char kVocab[] =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\nnaive\n##s\nun\n##want\n##ed\n,\n.\n!\n'\n"
    "don\nt\nrunn\n##ing\n1\n##2\n##3\n\xe6\x95\xb0\n\xe5\xad\x97\na\n$\nb\ni\nHello\n";

std::unique_ptr<Tokenizer> Load(const std::string& vocab, const std::string& config = "") {
  auto dir = MakeTempDir("wordpiece");
  EXPECT_TRUE(dir.ok());
  EXPECT_TRUE(WriteFileAtomic(*dir + "/vocab.txt", vocab).ok());
  if (!config.empty()) EXPECT_TRUE(WriteFileAtomic(*dir + "/tokenizer_config.json", config).ok());
  auto tok = LoadTokenizer(*dir);
  RemoveAll(*dir);
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? std::move(*tok) : nullptr;
}

std::string Tokens(const Tokenizer& tok, std::string_view text) { return absl::StrJoin(tok.Tokenize(text), " "); }

TEST(WordPieceTest, LowerCasesStripsAccentsAndSplitsPunctuation) {
  auto tok = Load(kVocab);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->VocabSize(), 30);
  // "Héllo Naïve" -> lower "héllo naïve" -> NFD drops U+0301/U+0308 -> "hello naive".
  EXPECT_EQ(Tokens(*tok, "H\xc3\xa9llo Na\xc3\xafve world!"), "hello naive world !");
  EXPECT_THAT(tok->Encode("H\xc3\xa9llo Na\xc3\xafve world!"), ElementsAre(5, 7, 6, 14));
  EXPECT_EQ(Tokens(*tok, "HELLO,world."), "hello , world .");
  // BERT counts ASCII symbols as punctuation even where Unicode does not ($ is Sc).
  EXPECT_EQ(Tokens(*tok, "a$b"), "a $ b");
  // Latin Extended-A: İ lower-cases to "i" + U+0307, which accent stripping removes.
  EXPECT_EQ(Tokens(*tok, "\xc4\xb0"), "i");
}

TEST(WordPieceTest, GreedyLongestMatchFirstSubwords) {
  auto tok = Load(kVocab);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(Tokens(*tok, "unwanted running"), "un ##want ##ed runn ##ing");
  EXPECT_EQ(Tokens(*tok, "naives"), "naive ##s");
  EXPECT_EQ(Tokens(*tok, "don't"), "don ' t");
  EXPECT_EQ(Tokens(*tok, "123"), "1 ##2 ##3");
  // A word with any unmatched rest is one [UNK], not a partial match.
  EXPECT_EQ(Tokens(*tok, "unwantedx xyz hello"), "[UNK] [UNK] hello");
  // More than 100 code points -> [UNK] even though "a" is in the vocabulary.
  EXPECT_EQ(Tokens(*tok, std::string(101, 'a')), "[UNK]");
}

TEST(WordPieceTest, WhitespaceControlCharactersCjkAndEmoji) {
  auto tok = Load(kVocab);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(Tokens(*tok, "  hello\n\n\tworld   \r\n"), "hello world");
  EXPECT_EQ(Tokens(*tok, "hel\x01lo\xef\xbb\xbf"), "hello");  // control + BOM (Cf) removed
  EXPECT_EQ(Tokens(*tok, "hello\xc2\xa0world"), "hello world");  // no-break space splits
  // CJK ideographs become words of their own; digits after them stay one word.
  EXPECT_EQ(Tokens(*tok, "\xe6\x95\xb0\xe5\xad\x97" "123"), "\xe6\x95\xb0 \xe5\xad\x97 1 ##2 ##3");
  // An emoji is neither punctuation nor CJK: its own unknown word.
  EXPECT_EQ(Tokens(*tok, "hello \xf0\x9f\x98\x80!"), "hello [UNK] !");
  // Inverted question mark (Po) is punctuation: splits the word.
  EXPECT_EQ(Tokens(*tok, "hello\xc2\xbfworld"), "hello [UNK] world");
  // Invalid UTF-8 bytes are dropped like U+FFFD.
  EXPECT_EQ(Tokens(*tok, "hel\xfflo"), "hello");
  EXPECT_TRUE(tok->Tokenize("").empty());
}

TEST(WordPieceTest, SpecialTokensInTextStayWhole) {
  auto tok = Load(kVocab);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(Tokens(*tok, "[CLS] hello [MASK]![SEP]"), "[CLS] hello [MASK] ! [SEP]");
  const SpecialTokens& s = tok->Specials();
  EXPECT_EQ(s.pad, 0);
  EXPECT_EQ(s.unk, 1);
  EXPECT_EQ(s.cls, 2);
  EXPECT_EQ(s.sep, 3);
  EXPECT_EQ(s.mask, 4);
  EXPECT_EQ(s.bos, -1);
  EXPECT_EQ(s.eos, -1);
}

TEST(WordPieceTest, CasedConfigKeepsCaseAndAccents) {
  auto tok = Load(kVocab, R"({"do_lower_case": false})");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(Tokens(*tok, "Hello hello HELLO"), "Hello hello [UNK]");
  EXPECT_EQ(Tokens(*tok, "na\xc3\xafve"), "[UNK]");
  auto stripped = Load(kVocab, R"({"do_lower_case": false, "strip_accents": true})");
  ASSERT_NE(stripped, nullptr);
  EXPECT_EQ(Tokens(*stripped, "na\xc3\xafve"), "naive");
}

TEST(WordPieceTest, DecodeJoinsSubwordsAndCleansSpaces) {
  auto tok = Load(kVocab);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->Decode(tok->Encode("unwanted running, don't!")), "unwanted running, don't!");
  EXPECT_EQ(tok->Decode({2, 5, 6, 14, 3}), "[CLS] hello world! [SEP]");
  EXPECT_EQ(tok->Decode({5, 999, -1, 6}), "hello world");  // out-of-range ids skipped
}

TEST(WordPieceTest, EncodeForClassificationAddsClsSepAndTruncates) {
  auto tok = Load(kVocab);
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(EncodeForClassification(*tok, "hello world", 16), ElementsAre(2, 5, 6, 3));
  EXPECT_THAT(EncodeForClassification(*tok, "hello world naive", 4), ElementsAre(2, 5, 6, 3));
  EXPECT_THAT(EncodeForClassification(*tok, "hello", 1), ElementsAre(2));
  EXPECT_TRUE(EncodeForClassification(*tok, "hello", 0).empty());
}

TEST(WordPieceTest, SaveLoadsBackIdentically) {
  auto tok = Load(kVocab, R"({"do_lower_case": false, "unk_token": {"content": "[UNK]"}})");
  ASSERT_NE(tok, nullptr);
  auto dir = MakeTempDir("wordpiece-save");
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(tok->Save(*dir).ok());
  auto again = LoadTokenizer(*dir);
  RemoveAll(*dir);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->VocabSize(), tok->VocabSize());
  for (const char* text : {"Hello hello HELLO", "unwanted, don't", "[CLS] x"}) {
    EXPECT_EQ((*again)->Encode(text), tok->Encode(text)) << text;
  }
}

TEST(WordPieceTest, BadFilesNameTheFileAndLine) {
  auto empty_line = ParseVocabTxt("[UNK]\nhello\n\nworld\n", "v/vocab.txt");
  ASSERT_FALSE(empty_line.ok());
  EXPECT_THAT(empty_line.status().message(), HasSubstr("v/vocab.txt line 3"));
  EXPECT_FALSE(ParseVocabTxt("", "vocab.txt").ok());
  auto crlf = ParseVocabTxt("[UNK]\r\nhello\r\n");
  ASSERT_TRUE(crlf.ok());
  EXPECT_THAT(*crlf, ElementsAre("[UNK]", "hello"));

  auto dir = MakeTempDir("wordpiece-bad");
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(WriteFileAtomic(*dir + "/vocab.txt", "hello\nhello\n[UNK]\n").ok());
  auto duplicate = LoadTokenizer(*dir);
  ASSERT_FALSE(duplicate.ok());
  EXPECT_THAT(duplicate.status().message(), HasSubstr("lines 1 and 2"));
  ASSERT_TRUE(WriteFileAtomic(*dir + "/vocab.txt", "hello\n").ok());
  auto no_unk = LoadTokenizer(*dir);
  ASSERT_FALSE(no_unk.ok());
  EXPECT_THAT(no_unk.status().message(), HasSubstr("unk"));
  ASSERT_TRUE(WriteFileAtomic(*dir + "/vocab.txt", kVocab).ok());
  ASSERT_TRUE(WriteFileAtomic(*dir + "/tokenizer_config.json", "{\"do_lower_case\": 1}").ok());
  auto bad_config = LoadTokenizer(*dir);
  ASSERT_FALSE(bad_config.ok());
  EXPECT_THAT(bad_config.status().message(), HasSubstr("tokenizer_config.json: do_lower_case"));
  ASSERT_TRUE(WriteFileAtomic(*dir + "/tokenizer_config.json", "{\"do_lower_case\": tru").ok());
  auto broken_json = LoadTokenizer(*dir);
  ASSERT_FALSE(broken_json.ok());
  EXPECT_THAT(broken_json.status().message(), HasSubstr("tokenizer_config.json: invalid JSON"));
  RemoveAll(*dir);
  EXPECT_EQ(LoadTokenizer("/nonexistent-shrink-dir").status().code(), absl::StatusCode::kNotFound);
}

TEST(UnicodeTest, ClassesLowerCaseAndDecomposition) {
  using namespace unicode;
  EXPECT_TRUE(IsLetter(U'a') && IsLetter(0xE9) && IsLetter(0x4E2D) && IsLetter(0x3B1));
  EXPECT_FALSE(IsLetter(U'1') || IsLetter(U'_') || IsLetter(0xD7) || IsLetter(0x1F600));
  EXPECT_TRUE(IsNumber(U'7') && IsNumber(0xB2) && IsNumber(0xFF11));
  EXPECT_TRUE(IsBertPunctuation(U'`') && IsBertPunctuation(U'~') && IsBertPunctuation(0x2014));
  EXPECT_FALSE(IsBertPunctuation(0xD7) || IsBertPunctuation(U'a'));
  std::u32string out;
  for (char32_t c : std::u32string{0xC0, 0x178, 0x39A, 0x416, 0x100, 0x101, 0x141, 0x17D}) AppendLower(c, &out);
  EXPECT_EQ(out, (std::u32string{0xE0, 0xFF, 0x3BA, 0x436, 0x101, 0x101, 0x142, 0x17E}));
  out.clear();
  for (char32_t c : std::u32string{0xE9, 0x15B, 0xC5, 0xAC01, 0x304C, 0x3AC, 0xDF}) AppendNfd(c, &out);
  EXPECT_EQ(out, (std::u32string{U'e', 0x301, U's', 0x301, U'A', 0x30A, 0x1100, 0x1161, 0x11A8, 0x304B,
                                 0x3099, 0x3B1, 0x301, 0xDF}));
  // Beyond Latin-1: Vietnamese ế decomposes twice, Cyrillic ў, a CJK compatibility ideograph.
  out.clear();
  for (char32_t c : std::u32string{0x1EBF, 0x45E, 0xF900}) AppendNfd(c, &out);
  EXPECT_EQ(out, (std::u32string{U'e', 0x302, 0x301, 0x443, 0x306, 0x8C48}));
  out.clear();
  for (char32_t c : std::u32string{0x1E9E, 0x10A0, 0xFF21, 0x130}) AppendLower(c, &out);
  EXPECT_EQ(out, (std::u32string{0xDF, 0x2D00, 0xFF41, U'i', 0x307}));
  // HF counts every C* category as control: private use and unassigned too, not \t\n\r.
  EXPECT_TRUE(IsBertControl(0xE000) && IsBertControl(0x378) && IsBertControl(0x200B) && IsBertControl(0x7F));
  EXPECT_FALSE(IsBertControl(U'\t') || IsBertControl(U'\n') || IsBertControl(U'a'));
  EXPECT_TRUE(IsWhiteSpace(0x3000) && IsBertWhitespace(0x3000) && IsPythonSpace(0x1F));
  EXPECT_FALSE(IsWhiteSpace(0x1F) || IsBertWhitespace(0x2028));
  size_t pos = 0;
  EXPECT_EQ(DecodeUtf8("\xc0\x80", &pos), kInvalidByteBase + 0xC0);  // overlong
  EXPECT_EQ(pos, 1u);
  pos = 0;
  EXPECT_EQ(DecodeUtf8("\xf0\x9f\x98\x80", &pos), char32_t{0x1F600});
  EXPECT_EQ(pos, 4u);
}

}  // namespace
}  // namespace shrink::worker
