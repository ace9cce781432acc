// The little Unicode the tokenizers need, without ICU: UTF-8 decoding, the
// character classes BERT's BasicTokenizer and GPT-2's pre-tokenizer test, lower
// casing and canonical decomposition (NFD) for accent stripping.
//
// The classes (L*, N*, P*, Mn, C*, Zs), str.lower() and the canonical
// decompositions cover all of Unicode as Python's unicodedata knows it; the
// tables are generated into worker/unicode_tables.inc by
// scripts/gen_unicode_tables.py. Not reproduced: Python's context-dependent
// final-sigma lower casing, and NFD's canonical reordering of combining marks
// (irrelevant where the marks are then stripped).
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
// HF BERT's _is_control: categories C* (Cc, Cf, Co and the noncharacters; other
// unassigned code points are not recognised), except \t, \n, \r.
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
