// Command-line flags for the binaries and the shrink subcommands:
// "--name value", "--name=value", boolean "--name", and positionals.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace shrink {

// One accepted flag.
struct FlagSpec {
  std::string name;           // without the leading dashes
  std::string help;           // one line for --help
  std::string default_value;  // shown in --help; returned when the flag is absent
  bool is_bool = false;       // takes no value
};

// Parsed flags. Unknown flags and missing values are parse errors naming the flag.
class Args {
 public:
  // Parses argv[first..argc).
  static absl::StatusOr<Args> Parse(int argc, char** argv, int first,
                                    const std::vector<FlagSpec>& specs);

  // True when the flag was given.
  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  // The value given, or the spec's default.
  std::string Get(const std::string& name) const;
  absl::StatusOr<int64_t> GetInt(const std::string& name) const;
  absl::StatusOr<double> GetDouble(const std::string& name) const;
  bool GetBool(const std::string& name) const { return Has(name); }
  const std::vector<std::string>& positionals() const { return positionals_; }

 private:
  std::map<std::string, std::string> values_;
  std::map<std::string, std::string> defaults_;
  std::vector<std::string> positionals_;
};

// "usage: ..." text listing every flag with its help and default.
std::string FormatUsage(const std::string& synopsis, const std::vector<FlagSpec>& specs);

}  // namespace shrink
