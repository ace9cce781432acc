#include "common/args.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace shrink {

absl::StatusOr<Args> Args::Parse(int argc, char** argv, int first,
                                 const std::vector<FlagSpec>& specs) {
  Args args;
  std::map<std::string, const FlagSpec*> by_name;
  for (const auto& spec : specs) {
    by_name[spec.name] = &spec;
    args.defaults_[spec.name] = spec.default_value;
  }
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (!absl::StartsWith(arg, "--") || arg == "--") {
      args.positionals_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    auto it = by_name.find(name);
    if (it == by_name.end()) return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    if (it->second->is_bool) {
      if (has_value) return absl::InvalidArgumentError(absl::StrCat("flag --", name, " takes no value"));
      args.values_[name] = "true";
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      value = argv[++i];
    }
    args.values_[name] = value;
  }
  return args;
}

std::string Args::Get(const std::string& name) const {
  if (auto it = values_.find(name); it != values_.end()) return it->second;
  if (auto it = defaults_.find(name); it != defaults_.end()) return it->second;
  return "";
}

absl::StatusOr<int64_t> Args::GetInt(const std::string& name) const {
  int64_t v = 0;
  std::string s = Get(name);
  if (!absl::SimpleAtoi(s, &v)) {
    return absl::InvalidArgumentError(absl::StrCat("flag --", name, ": '", s, "' is not an integer"));
  }
  return v;
}

absl::StatusOr<double> Args::GetDouble(const std::string& name) const {
  double v = 0;
  std::string s = Get(name);
  if (!absl::SimpleAtod(s, &v)) {
    return absl::InvalidArgumentError(absl::StrCat("flag --", name, ": '", s, "' is not a number"));
  }
  return v;
}

std::string FormatUsage(const std::string& synopsis, const std::vector<FlagSpec>& specs) {
  std::string out = absl::StrCat("usage: ", synopsis, "\n");
  for (const auto& spec : specs) {
    std::string left = spec.is_bool ? absl::StrCat("--", spec.name)
                                    : absl::StrCat("--", spec.name, " VALUE");
    absl::StrAppendFormat(&out, "  %-26s %s", left, spec.help);
    if (!spec.default_value.empty()) absl::StrAppend(&out, " (default: ", spec.default_value, ")");
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace shrink
