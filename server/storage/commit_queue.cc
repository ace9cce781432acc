#include "server/storage/commit_queue.h"

#include <utility>

namespace shrink::server {

CommitQueue::CommitQueue(JobStore* store, Publish publish, size_t max_batch)
    : store_(store), publish_(std::move(publish)), max_batch_(max_batch) {
  thread_ = std::thread([this] { Loop(); });
}

CommitQueue::~CommitQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

uint64_t CommitQueue::Enqueue(JobWrite write, uint64_t version, v1::CandidateSummary last_candidate) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry entry;
  entry.seq = next_seq_++;
  entry.write = std::move(write);
  entry.version = version;
  entry.last_candidate = std::move(last_candidate);
  queue_.push_back(std::move(entry));
  cv_.notify_all();
  return queue_.back().seq;
}

std::vector<absl::Status> CommitQueue::Commit(std::vector<Entry>& batch) {
  std::vector<JobWrite> writes;
  writes.reserve(batch.size());
  for (Entry& e : batch) writes.push_back(std::move(e.write));
  std::vector<absl::Status> statuses;
  store_->PutBatch(writes, &statuses).IgnoreError();  // each write's status is in `statuses`
  for (size_t i = 0; i < batch.size(); ++i) batch[i].write = std::move(writes[i]);
  return statuses;
}

void CommitQueue::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return (stop_ && !committing_) || (!queue_.empty() && !committing_); });
    if (queue_.empty()) return;  // stop asked and everything committed
    std::vector<Entry> batch;
    while (!queue_.empty() && batch.size() < max_batch_) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    committing_ = true;
    lock.unlock();
    std::vector<absl::Status> statuses = Commit(batch);
    lock.lock();
    committing_ = false;
    ++batches_;
    writes_ += batch.size();
    committed_through_ = batch.back().seq;
    cv_.notify_all();  // a WaitCommitted waiting for this batch
    lock.unlock();
    publish_(batch, statuses);
    lock.lock();
  }
}

void CommitQueue::WaitCommitted(uint64_t seq) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return committed_through_ >= seq || (stop_ && queue_.empty() && !committing_); });
}

uint64_t CommitQueue::batches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return batches_;
}

uint64_t CommitQueue::writes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return writes_;
}

}  // namespace shrink::server
