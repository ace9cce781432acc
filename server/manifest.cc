#include "server/manifest.h"

#include <algorithm>
#include <cmath>

#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>

#include "agent/reward.h"
#include "common/policy.h"
#include "common/runtimes.h"

namespace shrink::server {
namespace {

using nlohmann::json;

// A proto as JSON with its field names as in the .proto, defaults included.
json ProtoJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(message, &text, options).ok()) return json();
  return json::parse(text, nullptr, /*allow_exceptions=*/false);
}

// Per-layer shapes after the policy, by the rule the pruning pass follows:
// round(prune * out) units removed (at least one kept); a layer's inputs
// shrink with the previous layer's kept units.
json LayerTable(const v1::ModelDescription& model, const v1::Policy& policy) {
  json layers = json::array();
  auto actions = ResolvePolicy(policy, model);
  if (!actions.ok()) return layers;
  int64_t previous_kept = -1;
  for (int i = 0; i < model.layers_size(); ++i) {
    const v1::LayerInfo& layer = model.layers(i);
    const v1::LayerAction& action = (*actions)[i];
    int64_t out = layer.out_features();
    if (layer.prunable()) {
      int64_t removed = static_cast<int64_t>(std::llround(action.prune() * static_cast<double>(out)));
      out = std::max<int64_t>(1, out - removed);
    }
    int64_t in = previous_kept >= 0 ? previous_kept * std::max<int64_t>(1, layer.input_group())
                                    : layer.in_features();
    previous_kept = out;
    layers.push_back({{"name", layer.name()},
                      {"kind", layer.kind()},
                      {"in_features", layer.in_features()},
                      {"out_features", layer.out_features()},
                      {"kept_in_features", in},
                      {"kept_out_features", out},
                      {"kernel_elements", layer.kernel_elements()},
                      {"prune", action.prune()},
                      {"bits", EffectiveBits(action.bits())},
                      {"distill", action.distill()},
                      {"params_before", layer.params()},
                      {"weights_after", in * out * std::max<int64_t>(1, layer.kernel_elements())}});
  }
  return layers;
}

}  // namespace

std::string BuildManifest(const v1::Job& job, const v1::Evaluation& final_evaluation,
                          const std::vector<v1::CandidateSummary>& candidates,
                          const std::string& model_config) {
  const v1::JobSpec& spec = job.spec();
  json m;
  m["format"] = "shrink-manifest-1";
  m["job"] = job.id();
  m["name"] = spec.name();
  m["created_unix_ms"] = job.created_unix_ms();
  json spec_json = ProtoJson(spec);
  spec_json["reward"] = ProtoJson(agent::EffectiveWeights(spec.reward()));
  m["spec"] = spec_json;
  // Every latency below (final_evaluation, history) was measured in this runtime.
  m["runtime"] = RuntimeOrDefault(spec.runtime());
  m["reward_formula"] =
      "alpha*retention + beta*(1 - size_ratio) + gamma*(speedup - 1) - delta*(max(0, min_retention - "
      "retention) + max(0, size_ratio - target_size))";
  m["policy"] = ProtoJson(job.best().policy());
  m["policy_summary"] = PolicySummary(job.best().policy());
  m["layers"] = LayerTable(job.description(), job.best().policy());
  if (!model_config.empty()) {
    json config = json::parse(model_config, nullptr, /*allow_exceptions=*/false);
    if (!config.is_discarded()) m["model_config"] = config;
  }
  // The artifact's files (manifest.json itself aside), and which one to deploy: model.onnx runs
  // in ONNX Runtime; config.json + model.safetensors load in Shrink.
  json files = json::array();
  for (const auto& f : job.artifact_files()) {
    if (f.name() == "manifest.json") continue;
    files.push_back({{"name", f.name()}, {"bytes", f.size()}, {"sha256", f.sha256()}});
    if (f.name() == "model.onnx") m["deploy"] = {{"onnx", "model.onnx"}, {"runtime", "onnxruntime"}, {"details", "export.json"}};
  }
  m["files"] = files;
  m["description"] = ProtoJson(job.description());
  m["final_evaluation"] = ProtoJson(final_evaluation);
  m["goal_met"] = agent::MeetsGoal(spec.goal(), final_evaluation);
  m["best_candidate"] = ProtoJson(job.best());
  json history = json::array();
  for (const auto& c : candidates) history.push_back(ProtoJson(c));
  m["history"] = history;
  return m.dump(2) + "\n";
}

}  // namespace shrink::server
