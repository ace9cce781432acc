#include "client/remote/job_file.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"

namespace shrink::client {
namespace {

template <typename T>
absl::Status Read(const YAML::Node& node, const std::string& key, T* out) {
  try {
    *out = node.as<T>();
    return absl::OkStatus();
  } catch (const YAML::Exception&) {
    return absl::InvalidArgumentError(absl::StrCat("job file: '", key, "' has a value of the wrong type"));
  }
}

// A mapping key as a name; a key that is itself a list or mapping (`{}: 1`) is an error.
absl::StatusOr<std::string> KeyOf(const YAML::Node& key, const std::string& where) {
  if (!key.IsScalar()) {
    return absl::InvalidArgumentError(absl::StrCat("job file: a key", where, " at line ", key.Mark().line + 1,
                                                   " is not a plain name"));
  }
  return key.Scalar();
}

}  // namespace

absl::StatusOr<CompressRequest> ParseJobFile(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return absl::NotFoundError(absl::StrCat("cannot read job file ", path));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("job file ", path, ": ", e.what()));
  }
  if (!root.IsMap()) return absl::InvalidArgumentError(absl::StrCat("job file ", path, ": expected a mapping"));
  CompressRequest request;
  absl::Status s;
  for (const auto& entry : root) {
    absl::StatusOr<std::string> key_or = KeyOf(entry.first, "");
    if (!key_or.ok()) return key_or.status();
    const std::string key = *key_or;
    const YAML::Node& value = entry.second;
    if (key == "model") {
      s = Read(value, key, &request.model_dir);
      std::filesystem::path p(request.model_dir);
      if (p.is_relative()) request.model_dir = (std::filesystem::path(path).parent_path() / p).string();
    } else if (key == "task") {
      s = Read(value, key, &request.task);
    } else if (key == "target_size") {
      s = Read(value, key, &request.target_size);
    } else if (key == "min_retention") {
      s = Read(value, key, &request.min_retention);
    } else if (key == "budget") {
      s = Read(value, key, &request.budget);
    } else if (key == "search") {
      s = Read(value, key, &request.search);
    } else if (key == "runtime") {
      s = Read(value, key, &request.runtime);
    } else if (key == "init_agent") {
      s = Read(value, key, &request.init_agent);
    } else if (key == "seed") {
      s = Read(value, key, &request.seed);
    } else if (key == "max_in_flight") {
      s = Read(value, key, &request.max_in_flight);
    } else if (key == "name") {
      s = Read(value, key, &request.name);
    } else if (key == "request_id") {
      s = Read(value, key, &request.request_id);
    } else if (key == "reward") {
      if (!value.IsMap()) return absl::InvalidArgumentError("job file: 'reward' must be a mapping");
      for (const auto& w : value) {
        absl::StatusOr<std::string> name_or = KeyOf(w.first, " of 'reward'");
        if (!name_or.ok()) return name_or.status();
        const std::string name = *name_or;
        double v = 0;
        s = Read(w.second, "reward." + name, &v);
        if (!s.ok()) return s;
        if (name == "alpha") request.reward.set_alpha(v);
        else if (name == "beta") request.reward.set_beta(v);
        else if (name == "gamma") request.reward.set_gamma(v);
        else if (name == "delta") request.reward.set_delta(v);
        else return absl::InvalidArgumentError(absl::StrCat("job file: unknown key 'reward.", name, "'"));
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat("job file: unknown key '", key, "'"));
    }
    if (!s.ok()) return s;
  }
  if (request.model_dir.empty()) return absl::InvalidArgumentError("job file: 'model' is required");
  return request;
}

}  // namespace shrink::client
