#include "worker/latency/onnxruntime_latency.h"

#include <algorithm>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/median.h"
#include "common/status.h"
#include "worker/export/export_model.h"
#include "worker/latency/runtime_inputs.h"
#include "worker/model/guarded.h"
#include "worker/model/model_impl.h"

namespace shrink::worker {

absl::StatusOr<std::unique_ptr<OnnxRuntimeModel>> OnnxRuntimeModel::Open(std::shared_ptr<OnnxRuntimeProcess> process,
                                                                         const Model& model,
                                                                         const EvalOptions& options,
                                                                         const std::string& work_dir) {
  if (!model.impl || !model.impl->backend) return absl::FailedPreconditionError("timing an empty model");
  std::unique_ptr<OnnxRuntimeModel> out(new OnnxRuntimeModel());
  out->process_ = std::move(process);
  out->threads_ = options.threads > 0 ? options.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  SHRINK_RETURN_IF_ERROR(MakeDirs(work_dir));
  SHRINK_ASSIGN_OR_RETURN(out->dir_, MakeTempDir("onnxruntime-", work_dir));
  SHRINK_ASSIGN_OR_RETURN(ExportResult exported, WriteOnnxExport(model, out->dir_));
  SHRINK_ASSIGN_OR_RETURN(PastInputShapes past, ReadPastInputShapes(exported.manifest_json));
  SHRINK_RETURN_IF_ERROR(Guarded("preparing the latency batch", [&]() -> absl::Status {
    int examples = 0;
    for (const auto& [name, tensor] : model.impl->backend->LatencyInputs(options, &examples)) {
      out->feeds_[name] = ToRuntimeTensor(tensor);
    }
    AddEmptyPastInputs(past, examples, &out->feeds_);
    return absl::OkStatus();
  }));
  SHRINK_ASSIGN_OR_RETURN(OnnxRuntimeProcess::Session session,
                          out->process_->Load(absl::StrCat(out->dir_, "/", kOnnxFile), out->threads_));
  out->session_ = session.id;
  out->loaded_ = true;
  return out;
}

OnnxRuntimeModel::~OnnxRuntimeModel() {
  if (loaded_ && !process_->exited()) process_->Unload(session_).IgnoreError();
  if (!dir_.empty()) RemoveAll(dir_);
}

absl::StatusOr<LatencyPair> TimeInterleavedInOnnxRuntime(const OnnxRuntimeModel& first, const OnnxRuntimeModel& second,
                                                         const EvalOptions& options) {
  if (first.process_ != second.process_) {
    return absl::FailedPreconditionError("models timed together must be loaded in the same ONNX Runtime process");
  }
  SHRINK_ASSIGN_OR_RETURN(std::vector<std::vector<double>> ms,
                          first.process_->TimeInterleaved({{first.session_, first.feeds_}, {second.session_, second.feeds_}},
                                                          options.warmup_runs, options.timed_runs));
  LatencyPair pair;
  pair.first_ms = Median(ms.at(0));
  pair.second_ms = Median(ms.at(1));
  pair.threads = first.threads_;
  return pair;
}

absl::StatusOr<double> TimeInOnnxRuntime(const OnnxRuntimeModel& model, const EvalOptions& options) {
  SHRINK_ASSIGN_OR_RETURN(std::vector<std::vector<double>> ms,
                          model.process_->TimeInterleaved({{model.session_, model.feeds_}}, options.warmup_runs,
                                                          options.timed_runs));
  return Median(ms.at(0));
}

}  // namespace shrink::worker
