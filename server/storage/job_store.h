// The coordinator's durable state: jobs, their candidates and the search (agent)
// checkpoints, in one SQLite database (WAL) under the state folder.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shrink/v1/types.pb.h"

struct sqlite3;
struct sqlite3_stmt;

namespace shrink::server {

// Jobs, candidates and search state in SQLite. Protos are stored as serialized
// bytes beside the few columns that queries need (request id, state, creation
// time), so adding a proto field needs no migration.
//
// Thread-safety: every method may be called from any thread. One connection is
// shared and guarded by an internal mutex, so calls are serialized; each call is
// one statement or one transaction. Another process opening the same file waits
// up to the busy timeout rather than failing at once.
// One durable change of a job: the job record, and optionally one of its
// candidates and its search state, applied together or not at all.
struct JobWrite {
  v1::Job job;
  std::optional<v1::CandidateSummary> candidate;
  std::optional<std::string> search_state;
};

class JobStore {
 public:
  // Opens (creating if needed, with its parent folders) the database at `path`;
  // creates the schema; WAL mode. DataLoss when the file is not a database.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& path);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Inserts or replaces the job (keyed by job.id()); also indexes
  // job.spec().client_request_id() (if non-empty, unique: AlreadyExists when
  // another job holds it) and state. Candidates and search state are kept.
  absl::Status PutJob(const v1::Job& job);

  // The job with this id; NotFound names the id.
  absl::StatusOr<v1::Job> GetJob(const std::string& id);

  // Every job, oldest first (created_unix_ms, then id).
  absl::StatusOr<std::vector<v1::Job>> ListJobs();

  // Jobs whose state is not SUCCEEDED/FAILED/CANCELLED, oldest first.
  absl::StatusOr<std::vector<v1::Job>> ListUnfinishedJobs();

  // The id of the job submitted with this client request id (as RequestIdKey
  // makes it: scoped by tenant), or NotFound.
  absl::StatusOr<std::string> FindJobByRequestId(const std::string& request_id);

  // Inserts or replaces candidate (job_id, candidate.id()); NotFound if the job
  // was never put.
  absl::Status PutCandidate(const std::string& job_id, const v1::CandidateSummary& candidate);

  // The job's candidates ordered by id (empty when none).
  absl::StatusOr<std::vector<v1::CandidateSummary>> ListCandidates(const std::string& job_id);

  // Stores opaque per-job search state (agent checkpoint), replacing the previous
  // one; NotFound if the job was never put.
  absl::Status PutSearchState(const std::string& job_id, const std::string& bytes);

  // The last search state put for the job; NotFound if none.
  absl::StatusOr<std::string> GetSearchState(const std::string& job_id);

  // Atomically: PutJob(job) + PutCandidate(job.id(), candidate), and
  // PutSearchState(job.id(), *search_state) when given, in one transaction
  // (used when a result arrives, so the agent checkpoint always matches the
  // recorded candidates); nothing changes if any fails.
  absl::Status PutCandidateAndJob(const v1::CandidateSummary& candidate, const v1::Job& job,
                                  const std::string* search_state = nullptr);

  // Group commit: applies `writes` in order in ONE transaction (one commit, so
  // one fsync for the whole batch). Each write is atomic on its own (a
  // savepoint): one that fails changes nothing and leaves the others applied;
  // (*results)[i] is write i's status. When the commit itself fails nothing of
  // the batch is stored and every result is that error, which is also returned.
  absl::Status PutBatch(const std::vector<JobWrite>& writes, std::vector<absl::Status>* results);

  // true (the default): every commit is fsynced, so an acknowledged result
  // survives a power cut (one fsync, ~10 ms on a slow disk, per result).
  // false: commits reach the OS only (SQLite synchronous=NORMAL in WAL mode):
  // they survive a crash or SIGKILL of the coordinator, not a power cut.
  absl::Status SetFsyncEachCommit(bool on);

  // Where the database lives.
  const std::string& path() const { return path_; }

 private:
  class Statement;

  JobStore(std::string path, sqlite3* db);
  absl::Status Initialize();
  absl::Status Exec(const char* sql, const char* what);
  absl::StatusOr<sqlite3_stmt*> Prepare(const char* sql);
  absl::Status PutJobLocked(const v1::Job& job);
  absl::Status PutSearchStateLocked(const std::string& job_id, const std::string& bytes);
  absl::Status PutCandidateLocked(const std::string& job_id, const v1::CandidateSummary& candidate);
  absl::Status PutWriteLocked(const JobWrite& write);
  absl::StatusOr<std::vector<v1::Job>> ListJobsLocked(sqlite3_stmt* statement, const char* what);
  absl::Status SqliteError(int rc, const std::string& what) const;

  const std::string path_;
  std::mutex mutex_;
  sqlite3* db_;  // guarded by mutex_ (including sqlite3_errmsg, which is per connection)

  // Prepared once, reset after each use; guarded by mutex_.
  sqlite3_stmt* upsert_job_ = nullptr;
  sqlite3_stmt* get_job_ = nullptr;
  sqlite3_stmt* list_jobs_ = nullptr;
  sqlite3_stmt* list_unfinished_jobs_ = nullptr;
  sqlite3_stmt* find_by_request_id_ = nullptr;
  sqlite3_stmt* upsert_candidate_ = nullptr;
  sqlite3_stmt* list_candidates_ = nullptr;
  sqlite3_stmt* upsert_search_state_ = nullptr;
  sqlite3_stmt* get_search_state_ = nullptr;
};

// The indexed form of a client request id: scoped by tenant, so two tenants'
// ids never collide and one tenant cannot find another's job by its id.
std::string RequestIdKey(const std::string& tenant, const std::string& request_id);

}  // namespace shrink::server
