// Byte-level BPE (GPT-2/RoBERTa): the hand-written pre-tokenizer against the
// regex's semantics worked out by hand, merges by rank, specials, round trips.
#include "worker/tokenizers/byte_bpe.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "absl/strings/str_join.h"
#include "common/files.h"
#include "nlohmann/json.hpp"
#include "worker/tokenizers/tokenizer.h"

namespace shrink::worker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The pieces of `text` joined by `sep`.
std::string Pieces(std::string_view text, const std::string& sep = "|") {
  std::string out;
  for (std::string_view piece : Gpt2PreTokenize(text)) {
    if (!out.empty()) out += sep;
    out += std::string(piece);
  }
  return out;
}

TEST(Gpt2PreTokenizeTest, FollowsTheRegexAlternativesInOrder) {
  EXPECT_EQ(Pieces("Hello world"), "Hello| world");
  EXPECT_EQ(Pieces("don't we'll it's I'M"), "don|'t| we|'ll| it|'s| I|'|M");  // contractions are lower case only
  EXPECT_EQ(Pieces("''s"), "''|s");  // the "other" run is greedy and wins before 's is tried
  EXPECT_EQ(Pieces("a   b"), "a|  | b");  // \s+(?!\S) leaves one space for " ?\p{L}+"
  EXPECT_EQ(Pieces("a\n\nb"), "a|\n|\n|b");
  EXPECT_EQ(Pieces(" \tx"), " |\t|x");
  EXPECT_EQ(Pieces("hi  "), "hi|  ");  // trailing whitespace is one piece
  EXPECT_EQ(Pieces("123abc 42x"), "123|abc| 42|x");
  EXPECT_EQ(Pieces("hello!!! ok?"), "hello|!!!| ok|?");
  EXPECT_EQ(Pieces("\xc3\xa9moji \xf0\x9f\x98\x80!"), "\xc3\xa9moji| \xf0\x9f\x98\x80!");
  EXPECT_EQ(Pieces("\xe6\x97\xa5\xe6\x9c\xac \xe8\xaa\x9e"), "\xe6\x97\xa5\xe6\x9c\xac| \xe8\xaa\x9e");
  EXPECT_EQ(Pieces("x\xff\xfe y"), "x|\xff\xfe| y");  // invalid UTF-8 bytes are "other"
  EXPECT_EQ(Pieces(""), "");
}

TEST(Gpt2PreTokenizeTest, PiecesAlwaysConcatenateBackToTheText) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::string text;
    const int length = trial % 40;
    for (int i = 0; i < length; ++i) {
      const char alphabet[] = " \n\t'sSdre1!\xc3\xa9\x80z";
      text.push_back(alphabet[rng() % (sizeof(alphabet) - 1)]);
    }
    EXPECT_EQ(Pieces(text, ""), text);
  }
}

TEST(ByteToUnicodeTest, MatchesGpt2) {
  const auto& table = ByteToUnicode();
  EXPECT_EQ(table['!'], "!");
  EXPECT_EQ(table[' '], "\xc4\xa0");   // U+0120 Ġ
  EXPECT_EQ(table['\n'], "\xc4\x8a");  // U+010A Ċ
  EXPECT_EQ(table[0], "\xc4\x80");     // U+0100 Ā
  EXPECT_EQ(table[0xAD], "\xc5\x83");  // U+0143 Ń (soft hyphen)
  EXPECT_EQ(table[0xE9], "\xc3\xa9");  // printable Latin-1 maps to itself
}

// A byte-level vocabulary: the 256 byte symbols, the merges' results, extras.
struct TinyBpe {
  std::vector<std::pair<std::string, std::string>> merges = {
      {"h", "e"}, {"l", "l"}, {"\xc4\xa0", "w"}, {"he", "ll"}, {"hell", "o"}, {"o", "r"},
      {"\xc4\xa0w", "or"}, {"l", "d"}, {"\xc4\xa0wor", "ld"}, {"'", "t"}, {"\xc4\xa0", "\xc4\xa0"}};
  std::vector<std::pair<std::string, int64_t>> vocab;
  explicit TinyBpe(const std::vector<std::string>& specials_first,
                   const std::vector<std::string>& specials_last) {
    for (const auto& s : specials_first) vocab.emplace_back(s, vocab.size());
    for (const auto& b : ByteToUnicode()) vocab.emplace_back(b, vocab.size());
    for (const auto& [l, r] : merges) vocab.emplace_back(l + r, vocab.size());
    for (const auto& s : specials_last) vocab.emplace_back(s, vocab.size());
  }
  std::string Dir(const std::string& config = "") const {
    auto dir = MakeTempDir("bpe");
    EXPECT_TRUE(dir.ok());
    nlohmann::json json = nlohmann::json::object();
    for (const auto& [token, id] : vocab) json[token] = id;
    std::string merges_text = "#version: 0.2\n";
    for (const auto& [l, r] : merges) merges_text += l + " " + r + "\n";
    EXPECT_TRUE(WriteFileAtomic(*dir + "/vocab.json", json.dump()).ok());
    EXPECT_TRUE(WriteFileAtomic(*dir + "/merges.txt", merges_text).ok());
    if (!config.empty()) EXPECT_TRUE(WriteFileAtomic(*dir + "/tokenizer_config.json", config).ok());
    return *dir;
  }
};

std::unique_ptr<Tokenizer> LoadFrom(const std::string& dir) {
  auto tok = LoadTokenizer(dir);
  RemoveAll(dir);
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? std::move(*tok) : nullptr;
}

std::string Tokens(const Tokenizer& tok, std::string_view text) { return absl::StrJoin(tok.Tokenize(text), " "); }

TEST(ByteBpeTest, MergesByRank) {
  TinyBpe bpe({}, {"<|endoftext|>"});
  auto tok = LoadFrom(bpe.Dir());
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->VocabSize(), 256 + 11 + 1);
  // "hello": h e l l o -> he l l o -> he ll o -> hell o -> hello.
  // " world": Ġ w o r l d -> Ġw o r l d -> Ġw or l d -> Ġwor l d -> Ġwor ld -> Ġworld.
  EXPECT_EQ(Tokens(*tok, "hello world"), "hello \xc4\xa0world");
  EXPECT_THAT(tok->Encode("hello world"), ElementsAre(256 + 4, 256 + 8));
  // Pieces never merge across the pre-tokenizer's boundaries: "don" | "'t".
  EXPECT_EQ(Tokens(*tok, "don't"), "d o n 't");
  // "hellohello" is one piece; merges apply to every occurrence, left to right.
  EXPECT_EQ(Tokens(*tok, "hellohello"), "hello hello");
  // Non-ASCII: é's UTF-8 bytes C3 A9 are the symbols Ã ©; an emoji is 4 byte symbols.
  EXPECT_EQ(Tokens(*tok, "\xc3\xa9"), "\xc3\x83 \xc2\xa9");
  EXPECT_EQ(tok->Encode(" \xf0\x9f\x98\x80").size(), 5u);
  // Runs of spaces: "a" | "ĠĠ" (merged) | "Ġb"; a newline is Ċ.
  EXPECT_EQ(Tokens(*tok, "a   b\n"), "a \xc4\xa0\xc4\xa0 \xc4\xa0 b \xc4\x8a");
  // GPT-2's <|endoftext|> written in the text is one token; it is bos, eos and unk.
  EXPECT_EQ(Tokens(*tok, "hello<|endoftext|>"), "hello <|endoftext|>");
  EXPECT_EQ(tok->Specials().eos, 267);
  EXPECT_EQ(tok->Specials().bos, 267);
  EXPECT_EQ(tok->Specials().unk, 267);
  EXPECT_EQ(tok->Specials().pad, -1);
  EXPECT_EQ(tok->Specials().cls, -1);
  // Without cls/sep, classification input is the text's ids, truncated.
  EXPECT_THAT(EncodeForClassification(*tok, "hello world hello", 2), ElementsAre(256 + 4, 256 + 8));
}

TEST(ByteBpeTest, DecodeRoundTripsArbitraryBytes) {
  TinyBpe bpe({}, {"<|endoftext|>"});
  auto tok = LoadFrom(bpe.Dir());
  ASSERT_NE(tok, nullptr);
  std::mt19937 rng(3);
  for (int trial = 0; trial < 300; ++trial) {
    std::string text;
    const int length = trial % 64;
    for (int i = 0; i < length; ++i) {
      text.push_back(static_cast<char>(trial % 2 ? rng() % 256 : " helowrd't\n"[rng() % 11]));
    }
    EXPECT_EQ(tok->Decode(tok->Encode(text)), text);
  }
  EXPECT_EQ(tok->Decode({256 + 4, 267, 256 + 8}), "hello<|endoftext|> world");
}

TEST(ByteBpeTest, RobertaSpecialsPrefixSpaceAndClassification) {
  TinyBpe bpe({"<s>", "<pad>", "</s>", "<unk>"}, {"<mask>"});
  auto tok = LoadFrom(bpe.Dir(R"({"add_prefix_space": true})"));
  ASSERT_NE(tok, nullptr);
  const SpecialTokens& s = tok->Specials();
  EXPECT_EQ(s.cls, 0);
  EXPECT_EQ(s.bos, 0);
  EXPECT_EQ(s.pad, 1);
  EXPECT_EQ(s.sep, 2);
  EXPECT_EQ(s.eos, 2);
  EXPECT_EQ(s.unk, 3);
  EXPECT_EQ(s.mask, 4 + 256 + 11);
  // add_prefix_space: "world" is encoded as " world".
  EXPECT_EQ(Tokens(*tok, "world"), "\xc4\xa0world");
  EXPECT_THAT(EncodeForClassification(*tok, "world", 8), ElementsAre(0, 4 + 256 + 8, 2));
  EXPECT_THAT(EncodeForClassification(*tok, "world world", 3), ElementsAre(0, 4 + 256 + 8, 2));
  // RoBERTa's <mask> absorbs the white space before it (AddedToken lstrip=True).
  EXPECT_EQ(Tokens(*tok, "<mask>"), "<mask>");
  EXPECT_EQ(Tokens(*tok, "hello \n <mask> world"), "\xc4\xa0 hello <mask> \xc4\xa0world");
}

TEST(ByteBpeTest, SaveLoadsBackIdentically) {
  TinyBpe bpe({"<s>", "<pad>", "</s>", "<unk>"}, {"<mask>"});
  auto tok = LoadFrom(bpe.Dir());
  ASSERT_NE(tok, nullptr);
  auto dir = MakeTempDir("bpe-save");
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(tok->Save(*dir).ok());
  auto again = LoadFrom(*dir);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->VocabSize(), tok->VocabSize());
  EXPECT_EQ(again->Specials().mask, tok->Specials().mask);
  for (const char* text : {"hello world", "don't <mask>  \xc3\xa9\n", ""}) {
    EXPECT_EQ(again->Encode(text), tok->Encode(text)) << text;
  }
}

TEST(ByteBpeTest, BadFilesAreRejectedWithTheirLocation) {
  auto bad_line = ParseMerges("#version: 0.2\na b\nabc\n", "m/merges.txt");
  ASSERT_FALSE(bad_line.ok());
  EXPECT_THAT(bad_line.status().message(), HasSubstr("m/merges.txt line 3"));
  EXPECT_FALSE(ParseMerges("a b c\n").ok());
  auto merges = ParseMerges("a b\r\n\nc d");
  ASSERT_TRUE(merges.ok());
  EXPECT_EQ(merges->size(), 2u);

  EXPECT_THAT(ParseVocabJson("{\"a\": 1,", "v.json").status().message(), HasSubstr("v.json: invalid JSON"));
  EXPECT_THAT(ParseVocabJson("[1]").status().message(), HasSubstr("expected an object"));
  EXPECT_THAT(ParseVocabJson("{\"a\": -1}").status().message(), HasSubstr("'a'"));
  EXPECT_THAT(ParseVocabJson("{\"a\": \"x\"}").status().message(), HasSubstr("non-negative integer"));
  EXPECT_THAT(ParseVocabJson("{\"a\": 1, \"b\": 1}").status().message(), HasSubstr("share id 1"));
  EXPECT_THAT(ParseVocabJson("{\"a\": 99999999999}").status().message(), HasSubstr("far beyond"));

  // A vocabulary without every byte symbol is not byte-level BPE.
  auto no_bytes = ByteBpeTokenizer::Create({{"a", 0}}, {}, {});
  ASSERT_FALSE(no_bytes.ok());
  EXPECT_THAT(no_bytes.status().message(), HasSubstr("of byte 0"));
  TinyBpe bpe({}, {});
  auto missing_result = ByteBpeTokenizer::Create(bpe.vocab, {{"x", "y"}}, {});
  ASSERT_FALSE(missing_result.ok());
  EXPECT_THAT(missing_result.status().message(), HasSubstr("merge 1 ('x y')"));
  ByteBpeOptions options;
  options.specials.mask = "<mask>";
  EXPECT_THAT(ByteBpeTokenizer::Create(bpe.vocab, {}, options).status().message(), HasSubstr("'<mask>'"));
}

}  // namespace
}  // namespace shrink::worker
