#include "worker/service/task_runner.h"

#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/blob_upload.h"
#include "common/files.h"
#include "common/model_files.h"
#include "common/runtimes.h"
#include "worker/export/export_model.h"
#include "common/log.h"
#include "common/status.h"
#include "worker/service/task_result.h"
#include "worker/data/task_data.h"
#include "worker/eval/evaluate.h"
#include "worker/eval/compare.h"

namespace shrink::worker {
namespace {

const char* SplitFor(v1::Task::Kind kind) {
  return kind == v1::Task::FINALIZE ? "test" : "validation";
}

// Hard-links (or copies) a cached blob into a model folder under its file name.
absl::Status PlaceFile(const std::string& blob, const std::string& target) {
  if (PathExists(target)) return absl::OkStatus();
  if (::link(blob.c_str(), target.c_str()) == 0) return absl::OkStatus();
  SHRINK_ASSIGN_OR_RETURN(std::string bytes, ReadFile(blob));
  return WriteFileAtomic(target, bytes);
}

// How the user knows `file`: the path the client read it from (else its name), the digest as a detail.
std::string UserFileName(const v1::FileRef& file) {
  return absl::StrCat(file.origin().empty() ? file.name() : file.origin(), " (sha256 ", file.sha256().substr(0, 12), ")");
}

// `status` with the worker's own paths (cache folders, blobs) replaced by the user's names for
// them, so that an error about a model or data file names the file the user gave; code kept.
absl::Status InUserTerms(const absl::Status& status, const std::vector<std::pair<std::string, std::string>>& paths) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrReplaceAll(status.message(), paths));
}

}  // namespace


TaskRunner::TaskRunner(BlobCache* cache, EvalOptions eval_options, std::string work_dir, std::string device)
    : cache_(cache), eval_options_(eval_options), work_dir_(std::move(work_dir)), device_(std::move(device)) {}

v1::TaskResult TaskRunner::Run(const v1::Task& task, v1::WorkerPool::StubInterface* stub,
                               const RecallFlag* recalled) {
  absl::Time start = absl::Now();
  return RunToResult(task, start, [&] { return RunOrError(task, stub, recalled); });
}

absl::StatusOr<v1::TaskResult> TaskRunner::RunOrError(const v1::Task& task, v1::WorkerPool::StubInterface* stub,
                                                      const RecallFlag* recalled) {
  SHRINK_RETURN_IF_ERROR(CheckNotRecalled(recalled));
  SHRINK_ASSIGN_OR_RETURN(std::shared_ptr<LoadedModel> loaded, LoadModel(task, stub));
  SHRINK_ASSIGN_OR_RETURN(std::shared_ptr<const TaskData> data, LoadData(task, stub));
  const std::string split = SplitFor(task.kind());
  const std::string runtime = RuntimeOrDefault(task.runtime());
  if (!IsKnownRuntime(runtime)) return absl::InvalidArgumentError(absl::StrCat("unknown runtime '", runtime, "'"));
  // Evaluations and timings check the recall flag between batches and timed passes.
  EvalOptions eval = eval_options_;
  eval.recalled = recalled;
  SHRINK_RETURN_IF_ERROR(CheckNotRecalled(recalled));
  SHRINK_ASSIGN_OR_RETURN(v1::Metrics baseline, Baseline(*loaded, *data, split, eval));
  SHRINK_RETURN_IF_ERROR(CheckNotRecalled(recalled));

  v1::TaskResult result;
  if (task.kind() == v1::Task::DESCRIBE) {
    // The agent's state: shapes plus measured latency shares and per-layer sensitivity.
    SHRINK_ASSIGN_OR_RETURN(v1::ModelDescription description,
                            Profile(*loaded->model, *data, eval, ProfileOptions()));
    description.set_bytes(baseline.bytes());
    *result.mutable_description() = description;
    SHRINK_RETURN_IF_ERROR(TimeLatency(runtime, *loaded, nullptr, eval, &baseline, nullptr));
    *result.mutable_evaluation() = CompareToBaseline(baseline, baseline);
    return result;
  }
  if (task.kind() != v1::Task::EVALUATE && task.kind() != v1::Task::FINALIZE) {
    return absl::InvalidArgumentError(absl::StrCat("unknown task kind ", task.kind()));
  }
  // Candidates distill briefly; the finalized model gets the full budget.
  ApplyOptions apply;
  apply.data = *data;
  apply.distill.max_steps = task.kind() == v1::Task::FINALIZE ? kFinalDistillSteps : kSearchDistillSteps;
  apply.distill.recalled = recalled;
  SHRINK_ASSIGN_OR_RETURN(std::unique_ptr<Model> compressed, loaded->model->Apply(task.policy(), apply));
  SHRINK_RETURN_IF_ERROR(CheckNotRecalled(recalled));
  EvalOptions untimed = eval;
  untimed.time_latency = false;
  SHRINK_ASSIGN_OR_RETURN(v1::Metrics metrics, Evaluate(*compressed, *data, split, untimed));
  SHRINK_RETURN_IF_ERROR(TimeLatency(runtime, *loaded, compressed.get(), eval, &baseline, &metrics));
  *result.mutable_evaluation() = CompareToBaseline(metrics, baseline);
  if (task.kind() == v1::Task::FINALIZE) {
    SHRINK_RETURN_IF_ERROR(MakeDirs(work_dir_));
    SHRINK_ASSIGN_OR_RETURN(std::string out_dir, MakeTempDir("artifact-", work_dir_));
    absl::Status s = compressed->Save(out_dir);
    // The deployable form beside it: model.onnx (+ .data past 2 GiB) and export.json.
    if (s.ok()) s = WriteOnnxExport(*compressed, out_dir).status();
    // config.json, model.safetensors, the ONNX export and the tokenizer files a transformer carries.
    std::vector<std::string> names = {kModelConfigFile, kModelWeightsFile, kOnnxFile, kExportManifestFile};
    std::vector<std::string> optional = TokenizerFileNames();
    optional.push_back(kOnnxDataFile);
    for (const std::string& extra : optional) {
      if (PathExists(absl::StrCat(out_dir, "/", extra))) names.push_back(extra);
    }
    for (const std::string& name : names) {
      if (!s.ok()) break;
      std::string path = absl::StrCat(out_dir, "/", name);
      auto ref = DescribeFile(path, name);
      if (!ref.ok()) {
        s = ref.status();
        break;
      }
      s = UploadFile(stub, path, *ref);
      *result.add_artifact_files() = *ref;
    }
    RemoveAll(out_dir);
    SHRINK_RETURN_IF_ERROR(s);
  }
  return result;
}

absl::Status TaskRunner::TimeLatency(const std::string& runtime, LoadedModel& loaded, const Model* candidate,
                                     const EvalOptions& eval, v1::Metrics* baseline, v1::Metrics* metrics) {
  LatencyPair latency;
  if (runtime == kRuntimeOnnxRuntime) {
    // The models as the artifact ships them (model.onnx), in the runtime it is deployed to.
    SHRINK_ASSIGN_OR_RETURN(std::shared_ptr<OnnxRuntimeModel> first, OnnxBaseline(loaded, eval));
    if (candidate == nullptr) {
      SHRINK_ASSIGN_OR_RETURN(latency.first_ms, TimeInOnnxRuntime(*first, eval));
    } else {
      SHRINK_ASSIGN_OR_RETURN(std::unique_ptr<OnnxRuntimeModel> second,
                              OnnxRuntimeModel::Open(first->process(), *candidate, eval, work_dir_));
      SHRINK_ASSIGN_OR_RETURN(latency, TimeInterleavedInOnnxRuntime(*first, *second, eval));
    }
    latency.threads = first->threads();
  } else if (candidate == nullptr) {
    // DESCRIBE: Baseline() timed it alone already.
    baseline->set_runtime(runtime);
    return absl::OkStatus();
  } else {
    // Latency drifts with load (other slots, other processes): time the baseline and the
    // candidate in alternating passes so that the speedup compares like with like.
    SHRINK_ASSIGN_OR_RETURN(latency, TimeInterleaved(*loaded.model, *candidate, eval));
  }
  baseline->set_latency_ms(latency.first_ms);
  baseline->set_threads(latency.threads);
  baseline->set_runtime(runtime);
  if (metrics != nullptr) {
    metrics->set_latency_ms(latency.second_ms);
    metrics->set_threads(latency.threads);
    metrics->set_runtime(runtime);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<OnnxRuntimeProcess>> TaskRunner::OnnxRuntime() {
  std::lock_guard<std::mutex> lock(onnx_mu_);
  if (onnx_ == nullptr || onnx_->exited()) {
    absl::StatusOr<std::unique_ptr<OnnxRuntimeProcess>> started = OnnxRuntimeProcess::Start();
    if (!started.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("this worker cannot run onnxruntime: ", started.status().message()));
    }
    onnx_ = std::move(*started);
  }
  return onnx_;
}

absl::StatusOr<std::shared_ptr<OnnxRuntimeModel>> TaskRunner::OnnxBaseline(LoadedModel& loaded,
                                                                          const EvalOptions& eval) {
  SHRINK_ASSIGN_OR_RETURN(std::shared_ptr<OnnxRuntimeProcess> process, OnnxRuntime());
  std::lock_guard<std::mutex> lock(loaded.onnx_mu);
  if (loaded.onnx_baseline == nullptr || loaded.onnx_baseline->process() != process) {
    loaded.onnx_baseline.reset();  // its session died with an earlier runner
    SHRINK_ASSIGN_OR_RETURN(std::unique_ptr<OnnxRuntimeModel> opened,
                            OnnxRuntimeModel::Open(process, *loaded.model, eval, work_dir_));
    loaded.onnx_baseline = std::move(opened);
  }
  return loaded.onnx_baseline;
}

absl::StatusOr<std::shared_ptr<TaskRunner::LoadedModel>> TaskRunner::LoadModel(
    const v1::Task& task, v1::WorkerPool::StubInterface* stub) {
  std::string key;
  for (const auto& f : task.model_files()) absl::StrAppend(&key, f.name(), "=", f.sha256(), ";");
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = models_.find(key); it != models_.end()) return it->second;
  // A folder per model, its files linked from the blob cache under their names.
  std::string dir = absl::StrCat(work_dir_, "/models/", Sha256Hex(key).substr(0, 16));
  SHRINK_RETURN_IF_ERROR(MakeDirs(dir));
  // Errors name the user's folder and files, not this cache.
  std::string user_dir = "the model folder";
  std::vector<std::pair<std::string, std::string>> user_paths;
  for (const auto& f : task.model_files()) {
    if (f.name().empty() || f.name().find('/') != std::string::npos || f.name()[0] == '.') {
      return absl::InvalidArgumentError(absl::StrCat("model file name '", f.name(), "' is not a plain name"));
    }
    SHRINK_ASSIGN_OR_RETURN(std::string blob, cache_->Get(f, stub));
    SHRINK_RETURN_IF_ERROR(PlaceFile(blob, absl::StrCat(dir, "/", f.name())));
    user_paths.emplace_back(absl::StrCat(dir, "/", f.name()), UserFileName(f));
    const std::string suffix = "/" + f.name();
    if (absl::EndsWith(f.origin(), suffix)) user_dir = f.origin().substr(0, f.origin().size() - suffix.size());
  }
  user_paths.emplace_back(dir, user_dir);
  auto loaded = std::make_shared<LoadedModel>();
  auto model = Model::Load(dir, device_);
  SHRINK_RETURN_IF_ERROR(InUserTerms(model.status(), user_paths));
  loaded->model = std::move(*model);
  models_[key] = loaded;
  return loaded;
}

absl::StatusOr<std::shared_ptr<const TaskData>> TaskRunner::LoadData(const v1::Task& task,
                                                                      v1::WorkerPool::StubInterface* stub) {
  const std::string& name = task.task().name();
  std::string key = name;
  for (const auto& f : task.task().data_files()) absl::StrAppend(&key, ";", f.name(), "=", f.sha256());
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = datasets_.find(key); it != datasets_.end()) return it->second;
  // Data comes as blobs from the client; a job without data files uses the
  // Debian packages installed on this worker (built-in tasks only).
  std::map<std::string, std::string> files;
  std::vector<std::pair<std::string, std::string>> user_paths;  // blob -> the user's file
  if (task.task().data_files_size() == 0) {
    if (IsUserTaskFile(name)) return absl::InvalidArgumentError(absl::StrCat("task '", name, "' came without its data file"));
    SHRINK_ASSIGN_OR_RETURN(files, LocalTaskFiles(name));
  } else {
    for (const auto& f : task.task().data_files()) {
      SHRINK_ASSIGN_OR_RETURN(files[f.name()], cache_->Get(f, stub));
      user_paths.emplace_back(files[f.name()], UserFileName(f));
    }
  }
  auto data = LoadTaskData(name, files);
  SHRINK_RETURN_IF_ERROR(InUserTerms(data.status(), user_paths));
  auto shared = std::make_shared<const TaskData>(std::move(*data));
  datasets_[key] = shared;
  return shared;
}

absl::StatusOr<v1::Metrics> TaskRunner::Baseline(LoadedModel& loaded, const TaskData& data,
                                                 const std::string& split, const EvalOptions& eval) {
  std::lock_guard<std::mutex> lock(loaded.mu);
  auto it = loaded.baseline_by_split.find(split);
  if (it != loaded.baseline_by_split.end()) return it->second;
  // A recalled task's CANCELLED is not cached: the next task measures again.
  SHRINK_ASSIGN_OR_RETURN(v1::Metrics full, Evaluate(*loaded.model, data, split, eval));
  loaded.baseline_by_split[split] = full;
  return full;
}

}  // namespace shrink::worker
