// Bearer tokens of the coordinator's clients: a file of `TOKEN TENANT` lines
// (blank lines and `#` comments allowed). A job belongs to its token's tenant.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace shrink {

// The tenant of clients when no tokens are configured.
inline constexpr char kDefaultTenant[] = "default";

// Immutable after Load; thread-safe.
class TokenTable {
 public:
  // Reads the file; errors name the line. Tokens must be at least 16
  // characters of [A-Za-z0-9._~+/=-]; tenants [A-Za-z0-9._-], at most 64.
  static absl::StatusOr<TokenTable> Load(const std::string& path);
  // Builds from (token, tenant) pairs with the same checks (tests).
  static absl::StatusOr<TokenTable> FromPairs(const std::vector<std::pair<std::string, std::string>>& pairs);

  // The tenant of `token`, or Unauthenticated. Compares digests of the
  // token with every entry in constant time, so timing leaks nothing.
  absl::StatusOr<std::string> TenantOf(std::string_view token) const;

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::array<unsigned char, 32> digest;
    std::string tenant;
  };
  std::vector<Entry> entries_;
};

// The token in an "authorization" header value "Bearer TOKEN" (empty if not one).
std::string_view BearerToken(std::string_view header);

}  // namespace shrink
