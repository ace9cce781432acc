#include "server/job_spec_validation.h"

#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "agent/search.h"
#include "common/api_limits.h"
#include "common/api_names.h"
#include "common/model_files.h"
#include "common/runtimes.h"
#include "common/sha256.h"
#include "common/status.h"
#include "common/task_names.h"
#include "common/tokens.h"

namespace shrink::server {
namespace {


// A file list's names: present, plain (no folders), unique, few; each blob uploaded, sizes as uploaded.
absl::Status ValidateFileRefs(const google::protobuf::RepeatedPtrField<v1::FileRef>& files, const char* field,
                              int max_files, const BlobStore& blobs) {
  if (files.size() > max_files) {
    return absl::InvalidArgumentError(absl::StrCat(field, " has ", files.size(), " files; at most ", max_files));
  }
  std::set<std::string> names;
  for (int i = 0; i < files.size(); ++i) {
    const v1::FileRef& file = files[i];
    // A leading '.' would hide the file in the worker's model folder: refused as the worker does.
    if (file.name().empty() || file.name().size() > kMaxFileNameChars || file.name().find('/') != std::string::npos ||
        file.name()[0] == '.') {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", i, "].name '", file.name(),
                                                     "' is not a plain file name"));
    }
    if (!names.insert(file.name()).second) {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", i, "].name '", file.name(), "' appears twice"));
    }
    if (file.origin().size() > kMaxFileOriginChars) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", i, "].origin is longer than ", kMaxFileOriginChars, " characters"));
    }
    if (!IsSha256Hex(file.sha256())) {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", file.name(), "].sha256 is not a sha256 hex digest"));
    }
    if (!blobs.Has(file.sha256())) {
      return absl::FailedPreconditionError(
          absl::StrCat(field, "[", file.name(), "]: blob ", file.sha256(), " was not uploaded"));
    }
    auto size = blobs.Size(file.sha256());
    if (size.ok() && *size != file.size()) {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", file.name(), "].size ", file.size(),
                                                     " differs from the uploaded blob's ", *size));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateJobSpec(const v1::JobSpec& spec, const std::string& tenant, const BlobStore& blobs,
                             JobStore& store) {
  if (spec.name().size() > kMaxJobNameChars) {
    return absl::InvalidArgumentError(absl::StrCat("spec.name is longer than ", kMaxJobNameChars, " characters"));
  }
  if (spec.client_request_id().size() > kMaxClientRequestIdChars) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.client_request_id is longer than ", kMaxClientRequestIdChars, " characters"));
  }
  SHRINK_RETURN_IF_ERROR(ValidateFileRefs(spec.model_files(), "spec.model_files", kMaxModelFiles, blobs));
  SHRINK_RETURN_IF_ERROR(ValidateFileRefs(spec.task().data_files(), "spec.task.data_files", kMaxDataFiles, blobs));
  bool has_config = false, has_weights = false;
  for (const auto& file : spec.model_files()) {
    has_config |= file.name() == kModelConfigFile;
    has_weights |= file.name() == kModelWeightsFile;
  }
  if (!has_config || !has_weights) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.model_files must contain ", kModelConfigFile, " and ", kModelWeightsFile));
  }
  SHRINK_RETURN_IF_ERROR(ValidateTaskName(spec.task().name(), spec.task().data_files_size()));
  const v1::Goal& goal = spec.goal();
  if (!(goal.target_size() > 0 && goal.target_size() <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("spec.goal.target_size %g is outside (0, 1]", goal.target_size()));
  }
  if (!(goal.min_retention() >= 0 && goal.min_retention() <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("spec.goal.min_retention %g is outside [0, 1]", goal.min_retention()));
  }
  if (spec.budget() < 1 || spec.budget() > kMaxBudget) {
    return absl::InvalidArgumentError(
        absl::StrFormat("spec.budget %d is outside [1, %d]", spec.budget(), kMaxBudget));
  }
  if (!spec.runtime().empty() && !IsKnownRuntime(spec.runtime())) {
    return absl::InvalidArgumentError(absl::StrCat("spec.runtime '", spec.runtime(), "' is not one of: ",
                                                   absl::StrJoin(KnownRuntimes(), ", ")));
  }
  if (spec.max_in_flight() < 0 || spec.max_in_flight() > kMaxInFlight) {
    return absl::InvalidArgumentError(
        absl::StrFormat("spec.max_in_flight %d is outside [0, %d]", spec.max_in_flight(), kMaxInFlight));
  }
  const auto& r = spec.reward();
  const std::pair<const char*, double> weights[] = {
      {"alpha", r.alpha()}, {"beta", r.beta()}, {"gamma", r.gamma()}, {"delta", r.delta()}};
  for (const auto& [name, value] : weights) {
    if (!(value >= 0 && value <= kMaxRewardWeight)) {  // also refuses NaN
      return absl::InvalidArgumentError(
          absl::StrFormat("spec.reward.%s %g is outside [0, %g]", name, value, kMaxRewardWeight));
    }
  }
  if (!spec.init_agent().empty()) {
    if (spec.search() != "ddpg") {
      return absl::InvalidArgumentError(absl::StrCat(
          "spec.init_agent: only the ddpg search starts from another job's agent (search is '",
          spec.search(), "')"));
    }
    auto source = store.GetJob(spec.init_agent());
    // Another tenant's job reads as one that does not exist, as everywhere else.
    if (!source.ok() || (source->tenant().empty() ? kDefaultTenant : source->tenant()) != tenant) {
      return absl::NotFoundError(absl::StrCat("spec.init_agent: no job ", spec.init_agent()));
    }
    if (source->spec().search() != "ddpg" || source->state() != v1::SUCCEEDED) {
      return absl::FailedPreconditionError(absl::StrCat(
          "spec.init_agent: job ", spec.init_agent(), " is not a finished ddpg job (search '",
          source->spec().search(), "', state ", JobStateName(source->state()), ")"));
    }
    auto state = store.GetSearchState(spec.init_agent());
    if (!state.ok() || state->empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("spec.init_agent: job ", spec.init_agent(), " has no agent checkpoint"));
    }
  }
  // The search name is checked by building one on a one-layer model.
  agent::SearchContext probe;
  probe.model.add_layers()->set_name("probe");
  probe.goal = goal;
  probe.budget = 1;
  auto search = agent::MakeSearch(spec.search().empty() ? "random" : spec.search(), probe);
  if (!search.ok()) {
    return absl::Status(search.status().code(),
                        absl::StrCat("spec.search: ", search.status().message()));
  }
  return absl::OkStatus();
}

}  // namespace shrink::server
