#include "worker/checkpoint/storage_scheme.h"

#include "absl/strings/str_cat.h"

namespace shrink::worker {
namespace {

const char* RoleName(WeightRole role) {
  switch (role) {
    case WeightRole::kConv: return "conv";
    case WeightRole::kEmbedding: return "embedding";
    default: return "linear";
  }
}

// The int8 scheme each role is stored with.
bool Int8SchemeFits(const std::string& scheme, WeightRole role) {
  switch (role) {
    case WeightRole::kConv: return scheme == kSchemeInt8WeightPerChannel;
    case WeightRole::kEmbedding: return scheme == kSchemeInt8WeightPerRow;
    default: return scheme == kSchemeInt8DynamicPerChannel || scheme == kSchemeInt8DynamicPerTensor;
  }
}

}  // namespace

absl::Status CheckStorage(const LayerStorage& storage, WeightRole role) {
  const std::string& s = storage.scheme;
  auto bad = [&](const std::string& why) { return absl::InvalidArgumentError(why); };
  if (s == kSchemeFloat32) {
    if (storage.bits != 32) return bad(absl::StrCat("scheme fp32 needs bits 32, got ", storage.bits));
  } else if (s == kSchemeFloat16) {
    if (storage.bits < 9 || storage.bits > 16) return bad(absl::StrCat("scheme fp16 needs bits 9..16, got ", storage.bits));
  } else if (s == kSchemeGroupwise) {
    if (storage.bits < 4 || storage.bits > 7) return bad(absl::StrCat("scheme groupwise needs bits 4..7, got ", storage.bits));
    if (storage.group_size <= 0) return bad("scheme groupwise needs a positive group_size");
  } else if (s == kSchemeInt8WeightPerChannel || s == kSchemeInt8WeightPerRow || s == kSchemeInt8DynamicPerChannel ||
             s == kSchemeInt8DynamicPerTensor) {
    if (storage.bits != 8) return bad(absl::StrCat("scheme ", s, " needs bits 8, got ", storage.bits));
    if (!Int8SchemeFits(s, role)) return bad(absl::StrCat("scheme ", s, " does not apply to a ", RoleName(role), " layer"));
  } else {
    return bad(absl::StrCat("unknown scheme \"", s, "\""));
  }
  return absl::OkStatus();
}

}  // namespace shrink::worker
