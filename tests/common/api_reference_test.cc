// The .proto files are the API's reference: each limit the code enforces is stated in
// the comment of the field (or service) it limits, with the value the code uses. This
// test reads proto/shrink/v1/*.proto from the source tree and checks those comments
// against the constants in common/api_limits.h, common/channel.h and common/policy.h.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/api_limits.h"
#include "common/channel.h"
#include "common/policy.h"

namespace shrink {
namespace {

std::string ReadProto(const std::string& file) {
  std::ifstream in(std::string(SHRINK_SOURCE_DIR) + "/proto/shrink/v1/" + file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string Trim(const std::string& s) {
  const size_t begin = s.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  const size_t end = s.find_last_not_of(" \t\r");
  return s.substr(begin, end - begin + 1);
}

// A line without its `//` comment, trimmed.
std::string CodeOf(const std::string& line) { return Trim(line.substr(0, line.find("//"))); }

// The text of a line's `//` comment, trimmed; empty when it has none.
std::string CommentOf(const std::string& line) {
  const size_t at = line.find("//");
  return at == std::string::npos ? "" : Trim(line.substr(at + 2));
}

bool StartsWith(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

struct Declaration {
  bool found = false;
  std::string comment;  // the `//` lines directly above it, then its trailing comment, joined by spaces
  std::string error;    // why it was not found
};

// The declaration whose code starts with `declaration` inside `message <message> { ... }`
// of the proto text `proto` (anywhere in the file when `message` is empty). It must occur
// exactly once there.
Declaration FindDeclaration(const std::string& proto, const std::string& message, const std::string& declaration) {
  const std::vector<std::string> lines = SplitLines(proto);
  Declaration result;
  size_t first = 0, last = lines.size();  // the lines searched: [first, last)
  if (!message.empty()) {
    const std::string opening = "message " + message + " {";
    first = lines.size();
    for (size_t i = 0; i < lines.size(); ++i) {
      if (StartsWith(CodeOf(lines[i]), opening)) {
        first = i;
        break;
      }
    }
    if (first == lines.size()) {
      result.error = "no line starts with '" + opening + "'";
      return result;
    }
    // The message ends where its braces balance (nested enums, messages and oneofs included).
    int depth = 0;
    for (last = first; last < lines.size(); ++last) {
      for (char c : CodeOf(lines[last])) depth += c == '{' ? 1 : c == '}' ? -1 : 0;
      if (depth <= 0) break;
    }
    last = std::min(last + 1, lines.size());
  }
  size_t at = lines.size();
  for (size_t i = first; i < last; ++i) {
    if (!StartsWith(CodeOf(lines[i]), declaration)) continue;
    if (at != lines.size()) {
      result.error = "'" + declaration + "' is declared twice";
      return result;
    }
    at = i;
  }
  if (at == lines.size()) {
    result.error = "no declaration starts with '" + declaration + "'";
    return result;
  }
  std::vector<std::string> above;
  for (size_t i = at; i > first;) {  // stops at the message's opening line at the latest
    --i;
    const std::string line = Trim(lines[i]);
    if (!StartsWith(line, "//")) break;
    above.insert(above.begin(), CommentOf(line));
  }
  above.push_back(CommentOf(lines[at]));
  result.found = true;
  for (const std::string& part : above) {
    if (part.empty()) continue;
    if (!result.comment.empty()) result.comment += " ";
    result.comment += part;
  }
  return result;
}

bool IsDigit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// True when `text` contains `phrase` (ignoring case) with no further digits glued to a
// number at either end: "at most 256" is not in "at most 2560", "16 MiB" is not in
// "116 MiB", and "at most 0.9" is not in "at most 0.95".
bool ContainsPhrase(const std::string& text_in, const std::string& phrase_in) {
  const std::string text = Lower(text_in), phrase = Lower(phrase_in);
  if (phrase.empty()) return false;
  for (size_t at = text.find(phrase); at != std::string::npos; at = text.find(phrase, at + 1)) {
    const size_t end = at + phrase.size();
    const bool glued_before =
        IsDigit(phrase.front()) && at > 0 &&
        (IsDigit(text[at - 1]) || (text[at - 1] == '.' && at > 1 && IsDigit(text[at - 2])));
    const bool glued_after =
        IsDigit(phrase.back()) && end < text.size() &&
        (IsDigit(text[end]) || (text[end] == '.' && end + 1 < text.size() && IsDigit(text[end + 1])));
    if (!glued_before && !glued_after) return true;
  }
  return false;
}

// A constant as the comments write it: 256, 1000 (for 1000.0), 0.9.
template <typename T>
std::string Text(T value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

// What one comment must state.
struct Rule {
  std::string file;         // under proto/shrink/v1/
  std::string message;      // empty: the file's top level (e.g. a service)
  std::string declaration;  // how the declaration's code starts, e.g. "int32 budget ="
  std::string phrase;       // what its comment must contain, e.g. "at most 100000"
};

static_assert(kMaxMessageBytes % (1 << 20) == 0, "the comments state the message limit in whole MiB");

std::vector<Rule> Rules() {
  const std::string most = "at most ";
  const std::string message_bytes = Text(kMaxMessageBytes) + " bytes";
  const std::string message_mib = Text(kMaxMessageBytes >> 20) + " MiB";
  return {
      // common/api_limits.h, as server/job_spec_validation.cc enforces them.
      {"types.proto", "JobSpec", "string name =", most + Text(kMaxJobNameChars)},
      {"types.proto", "JobSpec", "string client_request_id =", most + Text(kMaxClientRequestIdChars)},
      {"types.proto", "JobSpec", "repeated FileRef model_files =", most + Text(kMaxModelFiles)},
      {"types.proto", "TaskSpec", "repeated FileRef data_files =", most + Text(kMaxDataFiles)},
      {"types.proto", "FileRef", "string name =", most + Text(kMaxFileNameChars)},
      {"types.proto", "FileRef", "string origin =", most + Text(kMaxFileOriginChars)},
      {"types.proto", "JobSpec", "int32 budget =", most + Text(kMaxBudget)},
      {"types.proto", "JobSpec", "int32 max_in_flight =", most + Text(kMaxInFlight)},
      {"types.proto", "RewardWeights", "double alpha =", most + Text(kMaxRewardWeight)},
      {"types.proto", "RewardWeights", "double beta =", most + Text(kMaxRewardWeight)},
      {"types.proto", "RewardWeights", "double gamma =", most + Text(kMaxRewardWeight)},
      {"types.proto", "RewardWeights", "double delta =", most + Text(kMaxRewardWeight)},
      // common/policy.h, as ValidateAction enforces them.
      {"types.proto", "LayerAction", "double prune =", most + Text(kMaxPrune)},
      {"types.proto", "LayerAction", "int32 bits =", "at least " + Text(kMinBits)},
      {"types.proto", "LayerAction", "int32 bits =", "group of " + Text(kQuantGroupSize)},
      // common/channel.h: every channel's and (by default) the coordinator's message limit.
      {"coordinator.proto", "BlobChunk", "bytes data =", message_bytes},
      {"coordinator.proto", "BlobChunk", "bytes data =", message_mib},
      {"coordinator.proto", "", "service Coordinator", message_bytes},
      {"coordinator.proto", "", "service Coordinator", message_mib},
  };
}

TEST(ApiReferenceTest, ProtoCommentsStateTheLimitsTheCodeEnforces) {
  for (const char* file : {"types.proto", "coordinator.proto", "worker_pool.proto"}) {
    EXPECT_FALSE(ReadProto(file).empty()) << "cannot read " << SHRINK_SOURCE_DIR << "/proto/shrink/v1/" << file;
  }
  for (const Rule& rule : Rules()) {
    const std::string where =
        rule.file + ": " + (rule.message.empty() ? "" : rule.message + ": ") + "'" + rule.declaration + "'";
    const Declaration found = FindDeclaration(ReadProto(rule.file), rule.message, rule.declaration);
    if (!found.found) {
      ADD_FAILURE() << where << ": " << found.error;
      continue;
    }
    EXPECT_TRUE(ContainsPhrase(found.comment, rule.phrase))
        << where << ": the comment does not state \"" << rule.phrase << "\" (the value in the code); it reads: \""
        << found.comment << "\"";
  }
}

// The checker itself: it takes the right declaration's comment, and a wrong number fails it.
TEST(ApiReferenceTest, CheckerFindsTheDeclarationsCommentAndRefusesOtherNumbers) {
  const std::string proto =
      "// About JobSpec, not about its fields.\n"
      "message JobSpec {\n"
      "  // Above, line one.\n"
      "  // Above, line two: at most 2560.\n"
      "  int32 budget = 5;  // trailing\n"
      "  string name = 1;\n"
      "  message Inner { enum Kind { A = 0; } }\n"
      "  int32 max_in_flight = 10;  // after a nested block\n"
      "}\n"
      "message Job {\n"
      "  JobSpec spec = 2;  // not JobSpec's own\n"
      "\n"
      "  int32 budget = 3;  // at most 256\n"
      "}\n"
      "// The service.\n"
      "// Two lines.\n"
      "service Coordinator {\n"
      "}\n";
  Declaration budget = FindDeclaration(proto, "JobSpec", "int32 budget =");
  ASSERT_TRUE(budget.found) << budget.error;
  EXPECT_EQ(budget.comment, "Above, line one. Above, line two: at most 2560. trailing");
  EXPECT_FALSE(ContainsPhrase(budget.comment, "at most 256"));
  EXPECT_TRUE(ContainsPhrase(budget.comment, "AT MOST 2560"));

  Declaration other = FindDeclaration(proto, "Job", "int32 budget =");
  ASSERT_TRUE(other.found) << other.error;
  EXPECT_EQ(other.comment, "at most 256");

  Declaration name = FindDeclaration(proto, "JobSpec", "string name =");
  ASSERT_TRUE(name.found) << name.error;
  EXPECT_EQ(name.comment, "");  // no comment: every rule on it fails

  Declaration after_nested = FindDeclaration(proto, "JobSpec", "int32 max_in_flight =");
  ASSERT_TRUE(after_nested.found) << after_nested.error;
  EXPECT_EQ(after_nested.comment, "after a nested block");

  Declaration service = FindDeclaration(proto, "", "service Coordinator");
  ASSERT_TRUE(service.found) << service.error;
  EXPECT_EQ(service.comment, "The service. Two lines.");

  EXPECT_FALSE(FindDeclaration(proto, "JobSpec", "int32 seed =").found);
  EXPECT_FALSE(FindDeclaration(proto, "Missing", "int32 budget =").found);
  EXPECT_FALSE(FindDeclaration(proto, "", "int32 budget =").found);  // twice in the file

  EXPECT_TRUE(ContainsPhrase("prune: from 0, at most 0.9.", "at most 0.9"));
  EXPECT_FALSE(ContainsPhrase("prune: at most 0.95", "at most 0.9"));
  EXPECT_TRUE(ContainsPhrase("at most 16 MiB (16777216 bytes)", "16 MiB"));
  EXPECT_FALSE(ContainsPhrase("at most 116 MiB (116777216 bytes)", "16 MiB"));
  EXPECT_FALSE(ContainsPhrase("at most 116 MiB (116777216 bytes)", "16777216 bytes"));
  EXPECT_EQ(Text(1000.0), "1000");
  EXPECT_EQ(Text(0.9), "0.9");
}

}  // namespace
}  // namespace shrink
