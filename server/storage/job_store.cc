#include "server/storage/job_store.h"

#include <sqlite3.h>

#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status.h"

namespace shrink::server {
namespace {

// Bumped when the schema changes incompatibly; a newer database is refused
// rather than misread.
constexpr int kSchemaVersion = 1;

// Milliseconds another connection (a second process, the sqlite3 shell) may hold a
// lock before a call gives up with Unavailable.
constexpr int kBusyTimeoutMs = 5000;

// Candidates and search state belong to a job; the foreign keys keep orphans out.
// Jobs are upserted (never REPLACEd) so their children survive state updates.
constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS jobs (
  id                TEXT PRIMARY KEY NOT NULL,
  client_request_id TEXT UNIQUE,            -- NULL when the client gave none
  state             INTEGER NOT NULL,       -- shrink.v1.JobState
  created_unix_ms   INTEGER NOT NULL,
  updated_unix_ms   INTEGER NOT NULL,
  job               BLOB NOT NULL           -- serialized shrink.v1.Job
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state);
CREATE INDEX IF NOT EXISTS jobs_by_creation ON jobs(created_unix_ms, id);
CREATE TABLE IF NOT EXISTS candidates (
  job_id    TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  id        INTEGER NOT NULL,
  candidate BLOB NOT NULL,                  -- serialized shrink.v1.CandidateSummary
  PRIMARY KEY (job_id, id)
);
CREATE TABLE IF NOT EXISTS search_states (
  job_id TEXT PRIMARY KEY NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  state  BLOB NOT NULL                      -- opaque agent checkpoint
);
)sql";

constexpr char kUpsertJob[] = R"sql(
INSERT INTO jobs (id, client_request_id, state, created_unix_ms, updated_unix_ms, job)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (id) DO UPDATE SET
  client_request_id = excluded.client_request_id, state = excluded.state,
  created_unix_ms = excluded.created_unix_ms, updated_unix_ms = excluded.updated_unix_ms,
  job = excluded.job
)sql";
constexpr char kGetJob[] = "SELECT job FROM jobs WHERE id = ?1";
constexpr char kListJobs[] = "SELECT job FROM jobs ORDER BY created_unix_ms, id";
constexpr char kListUnfinishedJobs[] =
    "SELECT job FROM jobs WHERE state NOT IN (?1, ?2, ?3) ORDER BY created_unix_ms, id";
constexpr char kFindByRequestId[] = "SELECT id FROM jobs WHERE client_request_id = ?1";
constexpr char kUpsertCandidate[] = R"sql(
INSERT INTO candidates (job_id, id, candidate) VALUES (?1, ?2, ?3)
ON CONFLICT (job_id, id) DO UPDATE SET candidate = excluded.candidate
)sql";
constexpr char kListCandidates[] = "SELECT candidate FROM candidates WHERE job_id = ?1 ORDER BY id";
constexpr char kUpsertSearchState[] = R"sql(
INSERT INTO search_states (job_id, state) VALUES (?1, ?2)
ON CONFLICT (job_id) DO UPDATE SET state = excluded.state
)sql";
constexpr char kGetSearchState[] = "SELECT state FROM search_states WHERE job_id = ?1";

absl::StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {  // primary code of an extended result code
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::StatusCode::kUnavailable;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::StatusCode::kPermissionDenied;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
      return absl::StatusCode::kUnavailable;
    case SQLITE_CONSTRAINT:
      return absl::StatusCode::kFailedPrecondition;
    default:
      return absl::StatusCode::kInternal;
  }
}

void BindText(sqlite3_stmt* statement, int index, const std::string& text) {
  sqlite3_bind_text(statement, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

void BindBlob(sqlite3_stmt* statement, int index, const std::string& bytes) {
  // A zero-length blob from sqlite3_bind_blob with a null pointer would store NULL.
  sqlite3_bind_blob64(statement, index, bytes.empty() ? "" : bytes.data(), bytes.size(),
                      SQLITE_TRANSIENT);
}

std::string ColumnBytes(sqlite3_stmt* statement, int column) {
  const void* data = sqlite3_column_blob(statement, column);
  int size = sqlite3_column_bytes(statement, column);
  if (data == nullptr || size <= 0) return std::string();
  return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

}  // namespace

// Resets a cached prepared statement (and clears its bindings) when the call that
// used it returns, so the next call starts clean and no read lock is held.
class JobStore::Statement {
 public:
  explicit Statement(sqlite3_stmt* statement) : statement_(statement) {}
  ~Statement() {
    sqlite3_reset(statement_);
    sqlite3_clear_bindings(statement_);
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  sqlite3_stmt* get() const { return statement_; }

 private:
  sqlite3_stmt* statement_;
};

JobStore::JobStore(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

JobStore::~JobStore() {
  for (sqlite3_stmt* statement :
       {upsert_job_, get_job_, list_jobs_, list_unfinished_jobs_, find_by_request_id_,
        upsert_candidate_, list_candidates_, upsert_search_state_, get_search_state_}) {
    sqlite3_finalize(statement);  // no-op on nullptr
  }
  sqlite3_close(db_);
}

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::string& path) {
  std::string parent = std::filesystem::path(path).parent_path().string();
  if (!parent.empty()) SHRINK_RETURN_IF_ERROR(MakeDirs(parent));
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  // The store owns the handle from here on, even on failure (sqlite3_close frees it).
  std::unique_ptr<JobStore> store(new JobStore(path, db));
  if (rc != SQLITE_OK) return store->SqliteError(rc, "cannot open job database");
  SHRINK_RETURN_IF_ERROR(store->Initialize());
  return store;
}

absl::Status JobStore::Initialize() {
  std::lock_guard<std::mutex> lock(mutex_);
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
  // The first statement reads the file header: a corrupt or foreign file fails here.
  SHRINK_RETURN_IF_ERROR(Exec("PRAGMA journal_mode = WAL", "cannot open job database"));
  // FULL: a result the coordinator acknowledged survives a power cut, at one fsync
  // per commit (a few per second at most).
  SHRINK_RETURN_IF_ERROR(Exec("PRAGMA synchronous = FULL", "cannot set synchronous mode"));
  SHRINK_RETURN_IF_ERROR(Exec("PRAGMA foreign_keys = ON", "cannot enable foreign keys"));

  SHRINK_ASSIGN_OR_RETURN(sqlite3_stmt * version_query, Prepare("PRAGMA user_version"));
  int version = 0;
  {
    Statement statement(version_query);
    int rc = sqlite3_step(version_query);
    if (rc != SQLITE_ROW) return SqliteError(rc, "cannot read schema version");
    version = sqlite3_column_int(version_query, 0);
  }
  sqlite3_finalize(version_query);
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("job database ", path_, " has schema version ", version,
                     ", newer than this binary understands (", kSchemaVersion, ")"));
  }
  SHRINK_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE", "cannot start schema transaction"));
  absl::Status created = Exec(kSchema, "cannot create schema");
  if (created.ok()) {
    created = Exec(absl::StrCat("PRAGMA user_version = ", kSchemaVersion).c_str(),
                   "cannot set schema version");
  }
  if (!created.ok()) {
    Exec("ROLLBACK", "cannot roll back").IgnoreError();
    return created;
  }
  SHRINK_RETURN_IF_ERROR(Exec("COMMIT", "cannot commit schema"));

  struct {
    sqlite3_stmt** slot;
    const char* sql;
  } statements[] = {
      {&upsert_job_, kUpsertJob},
      {&get_job_, kGetJob},
      {&list_jobs_, kListJobs},
      {&list_unfinished_jobs_, kListUnfinishedJobs},
      {&find_by_request_id_, kFindByRequestId},
      {&upsert_candidate_, kUpsertCandidate},
      {&list_candidates_, kListCandidates},
      {&upsert_search_state_, kUpsertSearchState},
      {&get_search_state_, kGetSearchState},
  };
  for (auto& entry : statements) {
    SHRINK_ASSIGN_OR_RETURN(*entry.slot, Prepare(entry.sql));
  }
  return absl::OkStatus();
}

absl::Status JobStore::Exec(const char* sql, const char* what) {
  char* message = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return absl::OkStatus();
  std::string detail = message != nullptr ? message : sqlite3_errstr(rc);
  sqlite3_free(message);
  return absl::Status(CodeFor(rc), absl::StrCat(what, " (", path_, "): ", detail));
}

absl::StatusOr<sqlite3_stmt*> JobStore::Prepare(const char* sql) {
  sqlite3_stmt* statement = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &statement, nullptr);
  if (rc != SQLITE_OK) return SqliteError(rc, absl::StrCat("cannot prepare \"", sql, "\""));
  return statement;
}

absl::Status JobStore::SqliteError(int rc, const std::string& what) const {
  const char* detail = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  return absl::Status(CodeFor(rc), absl::StrCat(what, " (", path_, "): ", detail));
}

absl::Status JobStore::PutJob(const v1::Job& job) {
  std::lock_guard<std::mutex> lock(mutex_);
  return PutJobLocked(job);
}

absl::Status JobStore::PutJobLocked(const v1::Job& job) {
  if (job.id().empty()) return absl::InvalidArgumentError("cannot store a job with an empty id");
  std::string bytes;
  if (!job.SerializeToString(&bytes)) {
    return absl::InternalError(absl::StrCat("cannot serialize job ", job.id()));
  }
  Statement statement(upsert_job_);
  BindText(upsert_job_, 1, job.id());
  const std::string& request_id = job.spec().client_request_id();
  const std::string key = RequestIdKey(job.tenant(), request_id);
  if (request_id.empty()) {
    sqlite3_bind_null(upsert_job_, 2);  // NULLs never collide in a UNIQUE column
  } else {
    BindText(upsert_job_, 2, key);
  }
  sqlite3_bind_int(upsert_job_, 3, static_cast<int>(job.state()));
  sqlite3_bind_int64(upsert_job_, 4, job.created_unix_ms());
  sqlite3_bind_int64(upsert_job_, 5, job.updated_unix_ms());
  BindBlob(upsert_job_, 6, bytes);
  int rc = sqlite3_step(upsert_job_);
  if (rc == SQLITE_DONE) return absl::OkStatus();
  if (rc == SQLITE_CONSTRAINT_UNIQUE) {
    return absl::AlreadyExistsError(absl::StrCat("cannot store job ", job.id(),
                                                 ": client_request_id \"", request_id,
                                                 "\" already belongs to another job"));
  }
  return SqliteError(rc, absl::StrCat("cannot store job ", job.id()));
}

absl::Status JobStore::SetFsyncEachCommit(bool on) {
  std::lock_guard<std::mutex> lock(mutex_);
  return Exec(on ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL", "cannot set synchronous mode");
}

std::string RequestIdKey(const std::string& tenant, const std::string& request_id) {
  // The default tenant keeps the bare id, so databases from before tenants still match.
  if (tenant.empty() || tenant == "default") return request_id;
  return absl::StrCat(tenant, "\x1f", request_id);
}

absl::StatusOr<v1::Job> JobStore::GetJob(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement statement(get_job_);
  BindText(get_job_, 1, id);
  int rc = sqlite3_step(get_job_);
  if (rc == SQLITE_DONE) return absl::NotFoundError(absl::StrCat("job \"", id, "\" not found"));
  if (rc != SQLITE_ROW) return SqliteError(rc, absl::StrCat("cannot read job ", id));
  v1::Job job;
  if (!job.ParseFromString(ColumnBytes(get_job_, 0))) {
    return absl::DataLossError(
        absl::StrCat("job ", id, ": stored record in ", path_, " does not parse"));
  }
  return job;
}

absl::StatusOr<std::vector<v1::Job>> JobStore::ListJobsLocked(sqlite3_stmt* query,
                                                              const char* what) {
  std::vector<v1::Job> jobs;
  for (;;) {
    int rc = sqlite3_step(query);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return SqliteError(rc, what);
    v1::Job job;
    if (!job.ParseFromString(ColumnBytes(query, 0))) {
      return absl::DataLossError(absl::StrCat(what, ": a stored job record in ", path_,
                                              " does not parse (row ", jobs.size(), ")"));
    }
    jobs.push_back(std::move(job));
  }
  return jobs;
}

absl::StatusOr<std::vector<v1::Job>> JobStore::ListJobs() {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement statement(list_jobs_);
  return ListJobsLocked(list_jobs_, "cannot list jobs");
}

absl::StatusOr<std::vector<v1::Job>> JobStore::ListUnfinishedJobs() {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement statement(list_unfinished_jobs_);
  sqlite3_bind_int(list_unfinished_jobs_, 1, v1::SUCCEEDED);
  sqlite3_bind_int(list_unfinished_jobs_, 2, v1::FAILED);
  sqlite3_bind_int(list_unfinished_jobs_, 3, v1::CANCELLED);
  return ListJobsLocked(list_unfinished_jobs_, "cannot list unfinished jobs");
}

absl::StatusOr<std::string> JobStore::FindJobByRequestId(const std::string& request_id) {
  if (request_id.empty()) {
    return absl::NotFoundError("no job is indexed under an empty client request id");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  Statement statement(find_by_request_id_);
  BindText(find_by_request_id_, 1, request_id);
  int rc = sqlite3_step(find_by_request_id_);
  if (rc == SQLITE_DONE) {
    return absl::NotFoundError(
        absl::StrCat("no job was submitted with client request id \"", request_id, "\""));
  }
  if (rc != SQLITE_ROW) {
    return SqliteError(rc, absl::StrCat("cannot look up client request id ", request_id));
  }
  return ColumnBytes(find_by_request_id_, 0);
}

absl::Status JobStore::PutCandidate(const std::string& job_id,
                                    const v1::CandidateSummary& candidate) {
  std::lock_guard<std::mutex> lock(mutex_);
  return PutCandidateLocked(job_id, candidate);
}

absl::Status JobStore::PutCandidateLocked(const std::string& job_id,
                                          const v1::CandidateSummary& candidate) {
  std::string bytes;
  if (!candidate.SerializeToString(&bytes)) {
    return absl::InternalError(
        absl::StrCat("cannot serialize candidate ", candidate.id(), " of job ", job_id));
  }
  Statement statement(upsert_candidate_);
  BindText(upsert_candidate_, 1, job_id);
  sqlite3_bind_int64(upsert_candidate_, 2, candidate.id());
  BindBlob(upsert_candidate_, 3, bytes);
  int rc = sqlite3_step(upsert_candidate_);
  if (rc == SQLITE_DONE) return absl::OkStatus();
  if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
    return absl::NotFoundError(absl::StrCat("cannot store candidate ", candidate.id(),
                                            ": job \"", job_id, "\" not found"));
  }
  return SqliteError(rc,
                     absl::StrCat("cannot store candidate ", candidate.id(), " of job ", job_id));
}

absl::StatusOr<std::vector<v1::CandidateSummary>> JobStore::ListCandidates(
    const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement statement(list_candidates_);
  BindText(list_candidates_, 1, job_id);
  std::vector<v1::CandidateSummary> candidates;
  for (;;) {
    int rc = sqlite3_step(list_candidates_);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      return SqliteError(rc, absl::StrCat("cannot list candidates of job ", job_id));
    }
    v1::CandidateSummary candidate;
    if (!candidate.ParseFromString(ColumnBytes(list_candidates_, 0))) {
      return absl::DataLossError(absl::StrCat("job ", job_id, ": a stored candidate record in ",
                                              path_, " does not parse (row ",
                                              candidates.size(), ")"));
    }
    candidates.push_back(std::move(candidate));
  }
  return candidates;
}

absl::Status JobStore::PutSearchState(const std::string& job_id, const std::string& bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  return PutSearchStateLocked(job_id, bytes);
}

absl::Status JobStore::PutSearchStateLocked(const std::string& job_id, const std::string& bytes) {
  Statement statement(upsert_search_state_);
  BindText(upsert_search_state_, 1, job_id);
  BindBlob(upsert_search_state_, 2, bytes);
  int rc = sqlite3_step(upsert_search_state_);
  if (rc == SQLITE_DONE) return absl::OkStatus();
  if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
    return absl::NotFoundError(
        absl::StrCat("cannot store search state: job \"", job_id, "\" not found"));
  }
  return SqliteError(rc, absl::StrCat("cannot store search state of job ", job_id));
}

absl::StatusOr<std::string> JobStore::GetSearchState(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement statement(get_search_state_);
  BindText(get_search_state_, 1, job_id);
  int rc = sqlite3_step(get_search_state_);
  if (rc == SQLITE_DONE) {
    return absl::NotFoundError(absl::StrCat("job \"", job_id, "\" has no search state"));
  }
  if (rc != SQLITE_ROW) {
    return SqliteError(rc, absl::StrCat("cannot read search state of job ", job_id));
  }
  return ColumnBytes(get_search_state_, 0);
}

absl::Status JobStore::PutCandidateAndJob(const v1::CandidateSummary& candidate,
                                          const v1::Job& job, const std::string* search_state) {
  std::lock_guard<std::mutex> lock(mutex_);
  SHRINK_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE", "cannot start transaction"));
  // The job first: a brand-new job must exist before its candidate's foreign key.
  absl::Status status = PutJobLocked(job);
  if (status.ok()) status = PutCandidateLocked(job.id(), candidate);
  if (status.ok() && search_state != nullptr) status = PutSearchStateLocked(job.id(), *search_state);
  if (status.ok()) status = Exec("COMMIT", "cannot commit candidate and job");
  if (!status.ok()) {
    // After a failed COMMIT SQLite may already have rolled back; a second error is noise.
    if (!sqlite3_get_autocommit(db_)) Exec("ROLLBACK", "cannot roll back").IgnoreError();
    return status;
  }
  return absl::OkStatus();
}

absl::Status JobStore::PutWriteLocked(const JobWrite& write) {
  // The job first: a brand-new job must exist before its candidate's foreign key.
  SHRINK_RETURN_IF_ERROR(PutJobLocked(write.job));
  if (write.candidate) SHRINK_RETURN_IF_ERROR(PutCandidateLocked(write.job.id(), *write.candidate));
  if (write.search_state) SHRINK_RETURN_IF_ERROR(PutSearchStateLocked(write.job.id(), *write.search_state));
  return absl::OkStatus();
}

absl::Status JobStore::PutBatch(const std::vector<JobWrite>& writes, std::vector<absl::Status>* results) {
  results->assign(writes.size(), absl::OkStatus());
  if (writes.empty()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mutex_);
  absl::Status status = Exec("BEGIN IMMEDIATE", "cannot start transaction");
  for (size_t i = 0; status.ok() && i < writes.size(); ++i) {
    status = Exec("SAVEPOINT job_write", "cannot start savepoint");
    if (!status.ok()) break;
    absl::Status applied = PutWriteLocked(writes[i]);
    if (applied.ok()) {
      status = Exec("RELEASE job_write", "cannot release savepoint");
    } else {
      (*results)[i] = applied;
      status = Exec("ROLLBACK TO job_write", "cannot roll back to savepoint");
      if (status.ok()) status = Exec("RELEASE job_write", "cannot release savepoint");
    }
  }
  if (status.ok()) status = Exec("COMMIT", "cannot commit");
  if (!status.ok()) {
    // After a failed COMMIT SQLite may already have rolled back; a second error is noise.
    if (!sqlite3_get_autocommit(db_)) Exec("ROLLBACK", "cannot roll back").IgnoreError();
    results->assign(writes.size(), status);
    return status;
  }
  return absl::OkStatus();
}

}  // namespace shrink::server
