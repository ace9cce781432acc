// Group commit for the coordinator's durable writes. Writes queue up while the
// previous batch commits; one writer thread commits each batch as one SQLite
// transaction (one fsync), outside the coordinator's mutex. Batches commit in
// FIFO order, so after a crash the database always holds the state after some
// prefix of the writes: exactly what a crash a little earlier would have left.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "server/storage/job_store.h"
#include "shrink/v1/types.pb.h"

namespace shrink::server {

class CommitQueue {
 public:
  // One queued write and what becomes visible once it is durable.
  struct Entry {
    uint64_t seq = 0;                     // 1, 2, ... in Enqueue order
    JobWrite write;
    uint64_t version = 0;                 // the job version this write makes durable
    v1::CandidateSummary last_candidate;  // what watchers see with that version
  };
  // Receives each batch after its commit, with each write's status (all the
  // commit's error when the commit failed).
  using Publish = std::function<void(std::vector<Entry>& batch, const std::vector<absl::Status>& statuses)>;

  // `publish` runs on the writer thread after each batch it commits.
  CommitQueue(JobStore* store, Publish publish, size_t max_batch = 1024);
  // Commits (and publishes) everything still queued, then stops the thread.
  ~CommitQueue();
  CommitQueue(const CommitQueue&) = delete;
  CommitQueue& operator=(const CommitQueue&) = delete;

  // Queues a write; returns its sequence number. Never blocks on I/O.
  uint64_t Enqueue(JobWrite write, uint64_t version, v1::CandidateSummary last_candidate);

  // Returns once the write numbered `seq` (an Enqueue result) is committed, or at once when
  // the queue has stopped. Takes no lock of the caller's: for threads that hold none.
  void WaitCommitted(uint64_t seq);

  // Batches and writes committed so far (the benchmark reports writes per batch).
  uint64_t batches() const;
  uint64_t writes() const;

 private:
  void Loop();
  // Commits `batch` (queue lock not held) and returns each write's status.
  std::vector<absl::Status> Commit(std::vector<Entry>& batch);

  JobStore* const store_;
  const Publish publish_;
  const size_t max_batch_;
  mutable std::mutex mu_;
  std::condition_variable cv_;  // queue filled, stop asked, or a commit finished
  std::deque<Entry> queue_;
  bool committing_ = false;     // the writer is committing a batch
  bool stop_ = false;
  uint64_t next_seq_ = 1;
  uint64_t committed_through_ = 0;  // every write up to this seq is committed (FIFO)
  uint64_t batches_ = 0, writes_ = 0;
  std::thread thread_;
};

}  // namespace shrink::server
