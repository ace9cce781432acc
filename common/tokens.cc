#include "common/tokens.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>


#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/status.h"

namespace shrink {
namespace {

constexpr size_t kMinTokenChars = 16;
constexpr size_t kMaxTenantChars = 64;

std::array<unsigned char, 32> Digest(std::string_view s) {
  std::array<unsigned char, 32> d;
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}

bool TokenChars(std::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && std::string_view("._~+/=-").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

bool TenantChars(std::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

absl::Status CheckPair(const std::string& token, const std::string& tenant, const std::string& where) {
  if (token.size() < kMinTokenChars || !TokenChars(token)) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": a token needs at least ", kMinTokenChars, " characters of [A-Za-z0-9._~+/=-]"));
  }
  if (tenant.empty() || tenant.size() > kMaxTenantChars || !TenantChars(tenant)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": a tenant is 1-", kMaxTenantChars, " characters of [A-Za-z0-9._-]"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TokenTable> TokenTable::FromPairs(
    const std::vector<std::pair<std::string, std::string>>& pairs) {
  TokenTable table;
  for (size_t i = 0; i < pairs.size(); ++i) {
    SHRINK_RETURN_IF_ERROR(CheckPair(pairs[i].first, pairs[i].second, absl::StrCat("token ", i + 1)));
    auto digest = Digest(pairs[i].first);
    for (const auto& e : table.entries_) {
      if (e.digest == digest) {
        return absl::InvalidArgumentError(absl::StrCat("token ", i + 1, " appears twice"));
      }
    }
    table.entries_.push_back({digest, pairs[i].second});
  }
  return table;
}

absl::StatusOr<TokenTable> TokenTable::Load(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return absl::InvalidArgumentError(absl::StrCat("--tokens ", path, ": ", text.status().message()));
  std::vector<std::pair<std::string, std::string>> pairs;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> fields = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    std::string where = absl::StrCat(path, ":", line_number);
    if (fields.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": expected `TOKEN TENANT`"));
    }
    SHRINK_RETURN_IF_ERROR(CheckPair(fields[0], fields[1], where));
    pairs.emplace_back(fields[0], fields[1]);
  }
  if (pairs.empty()) return absl::InvalidArgumentError(absl::StrCat("--tokens ", path, ": no tokens"));
  return FromPairs(pairs);
}

absl::StatusOr<std::string> TokenTable::TenantOf(std::string_view token) const {
  auto digest = Digest(token);
  const Entry* found = nullptr;
  // Every entry is compared, match or not.
  for (const auto& e : entries_) {
    bool equal = CRYPTO_memcmp(e.digest.data(), digest.data(), digest.size()) == 0;
    found = equal ? &e : found;
  }
  if (found == nullptr || token.empty()) return absl::UnauthenticatedError("unknown bearer token");
  return found->tenant;
}

std::string_view BearerToken(std::string_view header) {
  constexpr std::string_view kPrefix = "Bearer ";
  if (header.size() <= kPrefix.size() || header.substr(0, kPrefix.size()) != kPrefix) return {};
  return header.substr(kPrefix.size());
}

}  // namespace shrink
