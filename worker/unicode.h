// The little Unicode the tokenizers need, without ICU: UTF-8 decoding, the
// character classes BERT's BasicTokenizer and GPT-2's pre-tokenizer test, lower
// casing and canonical decomposition (NFD) for accent stripping.
//
// Coverage (everything else is treated as "other": not a letter, number, space,
// punctuation or mark, and has no case or decomposition):
// - letters (\p{L}) and numbers (\p{N}): all of ASCII and Latin-1, Latin Extended-A/B,
//   IPA, Latin Extended Additional, Greek, Cyrillic, Armenian, Hebrew, Arabic,
//   Devanagari, Thai, Georgian, Hangul, kana, CJK ideographs, fullwidth forms and the
//   common number blocks (superscripts, fractions, Roman numerals, circled digits);
// - punctuation (P*) in Latin-1, General Punctuation, CJK symbols and fullwidth forms,
//   plus BERT's ASCII symbol ranges;
// - lower casing: ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic, Latin Extended
//   Additional, fullwidth Latin (no Greek final-sigma rule);
// - NFD: Latin-1 Supplement (U+00C0-U+00FF), Latin Extended-A (U+0100-U+017F), the
//   Greek letters with tonos/dialytika, kana with (semi-)voiced marks, and Hangul
//   syllables (algorithmic).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace shrink::worker::unicode {

// Marks a byte that is not part of valid UTF-8 (the byte value is added to it),
// so that byte-level code can keep it while class tests treat it as "other".
inline constexpr char32_t kInvalidByteBase = 0x110000;

// Decodes the code point at text[*pos] and advances *pos. An invalid or truncated
// sequence consumes one byte and returns kInvalidByteBase + that byte.
char32_t DecodeUtf8(std::string_view text, size_t* pos);

// Appends the UTF-8 encoding of `c` (invalid-byte markers append their raw byte).
void AppendUtf8(char32_t c, std::string* out);

// \p{L}: a letter.
bool IsLetter(char32_t c);
// \p{N}: a number (decimal digits, letter numbers, other numbers).
bool IsNumber(char32_t c);
// \s as Python's `regex` module matches it: the Unicode White_Space property.
bool IsWhiteSpace(char32_t c);
// Characters Python's str.split() splits on (White_Space plus U+001C-U+001F).
bool IsPythonSpace(char32_t c);
// Mn: a non-spacing mark (what BERT's accent stripping removes after NFD).
bool IsNonspacingMark(char32_t c);

// BERT's _is_whitespace: space, \t, \n, \r and category Zs.
bool IsBertWhitespace(char32_t c);
// BERT's _is_control: categories Cc and Cf, except \t, \n, \r.
bool IsBertControl(char32_t c);
// BERT's _is_punctuation: ASCII 33-47, 58-64, 91-96, 123-126 and categories P*.
bool IsBertPunctuation(char32_t c);
// BERT's _is_chinese_char: the CJK Unified Ideographs blocks.
bool IsCjkIdeograph(char32_t c);

// Appends Python's str.lower() of `c` (İ becomes "i" + U+0307).
void AppendLower(char32_t c, std::u32string* out);

// Appends the canonical decomposition (NFD) of `c`, or `c` itself.
void AppendNfd(char32_t c, std::u32string* out);

}  // namespace shrink::worker::unicode
