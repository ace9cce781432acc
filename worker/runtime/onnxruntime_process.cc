#include "worker/runtime/onnxruntime_process.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace shrink::worker {
namespace {

using Json = nlohmann::json;

constexpr char kRunnerFile[] = "runner.mjs";

std::string ExecutableDir() {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return "";
  std::string path(self, static_cast<size_t>(n));
  return path.substr(0, path.rfind('/'));
}

// The first executable `name` on PATH ("" if none).
std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = absl::StrCat(dirs.substr(start, end - start), "/", name);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

Json TensorJson(const RuntimeTensor& t) {
  return {{"type", t.type}, {"dims", t.dims}, {"data", absl::Base64Escape(t.bytes)}};
}

absl::StatusOr<RuntimeTensor> TensorFromJson(const std::string& name, const Json& j) {
  RuntimeTensor t;
  t.type = j.at("type").get<std::string>();
  t.dims = j.at("dims").get<std::vector<int64_t>>();
  if (!absl::Base64Unescape(j.at("data").get<std::string>(), &t.bytes)) {
    return absl::InternalError(absl::StrCat("ONNX Runtime output ", name, ": data is not base64"));
  }
  return t;
}

// The runner's JSON reply to a request that came back as `line`; its "error" as InvalidArgument
// after `prefix` when it is not ok.
absl::StatusOr<Json> ReplyOf(const absl::StatusOr<std::string>& line, const std::string& prefix) {
  if (!line.ok()) return line.status();
  Json reply = Json::parse(*line, nullptr, false);
  if (reply.is_discarded()) return absl::InternalError("the ONNX Runtime runner answered something that is not JSON");
  if (!reply.value("ok", false)) return absl::InvalidArgumentError(absl::StrCat(prefix, ": ", reply.value("error", "")));
  return reply;
}

}  // namespace

RuntimeTensor RuntimeTensor::Int64(const std::vector<int64_t>& dims, const std::vector<int64_t>& values) {
  RuntimeTensor t{"int64", dims, std::string(values.size() * sizeof(int64_t), '\0')};
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

RuntimeTensor RuntimeTensor::Float32(const std::vector<int64_t>& dims, const std::vector<float>& values) {
  RuntimeTensor t{"float32", dims, std::string(values.size() * sizeof(float), '\0')};
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

std::vector<float> RuntimeTensor::Floats() const {
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

std::string OnnxRuntimeRunnerPath() {
  if (const char* env = std::getenv("SHRINK_ONNXRUNTIME_RUNNER"); env != nullptr && *env) return env;
  const std::string installed = absl::StrCat(ExecutableDir(), "/../share/shrink/onnxruntime/", kRunnerFile);
  if (PathExists(installed)) return installed;
  const std::string source = absl::StrCat(SHRINK_SOURCE_ROOT, "/worker/runtime/onnxruntime/", kRunnerFile);
  if (PathExists(source)) return source;
  return "";
}

absl::StatusOr<std::unique_ptr<OnnxRuntimeProcess>> OnnxRuntimeProcess::Start() {
  const char* node_env = std::getenv("SHRINK_NODE");
  const std::string node = node_env != nullptr && *node_env ? node_env : FindOnPath("node");
  if (node.empty()) {
    return absl::FailedPreconditionError("ONNX Runtime needs node (Debian package nodejs; scripts/install-deps.sh installs it)");
  }
  const std::string runner = OnnxRuntimeRunnerPath();
  if (runner.empty()) {
    return absl::FailedPreconditionError(
        "cannot find the ONNX Runtime runner (worker/runtime/onnxruntime/runner.mjs); set SHRINK_ONNXRUNTIME_RUNNER");
  }
  const std::string modules = absl::StrCat(runner.substr(0, runner.rfind('/')), "/node_modules/onnxruntime-node");
  if (!PathExists(modules)) {
    return absl::FailedPreconditionError(absl::StrCat("onnxruntime-node is not installed beside ", runner,
                                                      " (run scripts/install-deps.sh)"));
  }
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // the runner never outlives its owner
    if (getppid() != parent) _exit(127);
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    execl(node.c_str(), node.c_str(), runner.c_str(), "--serve", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  if (pid < 0) {
    close(in[1]);
    close(out[0]);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  std::unique_ptr<OnnxRuntimeProcess> process(new OnnxRuntimeProcess());
  process->pid_ = pid;
  process->to_child_ = in[1];
  process->from_child_ = out[0];
  return process;
}

OnnxRuntimeProcess::~OnnxRuntimeProcess() {
  if (to_child_ >= 0) close(to_child_);  // EOF ends the runner's request loop
  if (from_child_ >= 0) close(from_child_);
  if (pid_ > 0) {
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

absl::StatusOr<std::string> OnnxRuntimeProcess::Call(const std::string& request) {
  if (pid_ <= 0) return absl::UnavailableError("the ONNX Runtime runner has exited");
  // A runner that died makes write fail with EPIPE; do not let SIGPIPE end this process.
  struct sigaction ignore = {}, previous = {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, &previous);
  const bool sent = WriteAll(to_child_, request + "\n");
  sigaction(SIGPIPE, &previous, nullptr);
  size_t newline;
  while (sent && (newline = buffered_.find('\n')) == std::string::npos) {
    char chunk[1 << 16];
    ssize_t n = ::read(from_child_, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buffered_.append(chunk, static_cast<size_t>(n));
  }
  newline = buffered_.find('\n');
  if (!sent || newline == std::string::npos) {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return absl::UnavailableError(absl::StrCat("the ONNX Runtime runner exited (",
                                               WIFEXITED(status) ? absl::StrCat("code ", WEXITSTATUS(status))
                                                                 : absl::StrCat("signal ", WTERMSIG(status)),
                                               "); its error is on stderr above"));
  }
  std::string line = buffered_.substr(0, newline);
  buffered_.erase(0, newline + 1);
  return line;
}

absl::StatusOr<OnnxRuntimeProcess::Session> OnnxRuntimeProcess::Load(const std::string& model_path, int threads) {
  std::lock_guard<std::mutex> lock(mu_);
  Json request = {{"id", next_id_++}, {"op", "load"}, {"model", model_path}, {"threads", threads}};
  absl::StatusOr<Json> reply = ReplyOf(Call(request.dump()), absl::StrCat("ONNX Runtime cannot load ", model_path));
  if (!reply.ok()) return reply.status();
  Session session;
  session.id = reply->at("session").get<int>();
  session.inputs = reply->at("inputs").get<std::vector<std::string>>();
  session.outputs = reply->at("outputs").get<std::vector<std::string>>();
  return session;
}

absl::StatusOr<OnnxRuntimeProcess::RunResult> OnnxRuntimeProcess::Run(int session,
                                                                      const std::map<std::string, RuntimeTensor>& inputs,
                                                                      int warmup, int repeat, bool return_outputs) {
  std::lock_guard<std::mutex> lock(mu_);
  Json feeds = Json::object();
  for (const auto& [name, tensor] : inputs) feeds[name] = TensorJson(tensor);
  Json request = {{"id", next_id_++}, {"op", "run"},       {"session", session}, {"inputs", feeds},
                  {"warmup", warmup}, {"repeat", repeat}, {"return", return_outputs}};
  absl::StatusOr<Json> reply = ReplyOf(Call(request.dump()), "ONNX Runtime");
  if (!reply.ok()) return reply.status();
  RunResult result;
  result.latency_ms = reply->at("latency_ms").get<std::vector<double>>();
  if (auto outputs = reply->find("outputs"); outputs != reply->end()) {
    for (auto it = outputs->begin(); it != outputs->end(); ++it) {
      absl::StatusOr<RuntimeTensor> t = TensorFromJson(it.key(), it.value());
      if (!t.ok()) return t.status();
      result.outputs[it.key()] = std::move(*t);
    }
  }
  return result;
}

absl::StatusOr<std::vector<std::vector<double>>> OnnxRuntimeProcess::TimeInterleaved(
    const std::vector<std::pair<int, std::map<std::string, RuntimeTensor>>>& runs, int warmup, int repeat) {
  std::lock_guard<std::mutex> lock(mu_);
  Json list = Json::array();
  for (const auto& [session, inputs] : runs) {
    Json feeds = Json::object();
    for (const auto& [name, tensor] : inputs) feeds[name] = TensorJson(tensor);
    list.push_back({{"session", session}, {"inputs", feeds}});
  }
  Json request = {{"id", next_id_++}, {"op", "time"}, {"runs", list}, {"warmup", warmup}, {"repeat", repeat}};
  absl::StatusOr<Json> reply = ReplyOf(Call(request.dump()), "ONNX Runtime");
  if (!reply.ok()) return reply.status();
  return reply->at("latency_ms").get<std::vector<std::vector<double>>>();
}

bool OnnxRuntimeProcess::exited() {
  std::lock_guard<std::mutex> lock(mu_);
  return pid_ <= 0;
}

absl::Status OnnxRuntimeProcess::Unload(int session) {
  std::lock_guard<std::mutex> lock(mu_);
  Json request = {{"id", next_id_++}, {"op", "unload"}, {"session", session}};
  absl::StatusOr<std::string> line = Call(request.dump());
  return line.ok() ? absl::OkStatus() : line.status();
}

}  // namespace shrink::worker
