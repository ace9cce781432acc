// Group commit: JobStore::PutBatch applies each write atomically in one
// transaction; CommitQueue commits in FIFO order off the caller's thread and
// publishes each batch after it is durable.
#include "server/storage/commit_queue.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/files.h"

namespace shrink::server {
namespace {

using ::testing::HasSubstr;

class CommitQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeTempDir("commit_queue_test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    auto store = JobStore::Open(dir_ + "/jobs.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void TearDown() override { RemoveAll(dir_); }

  static JobWrite Write(const std::string& id, v1::JobState state, int64_t candidate = -1,
                        const std::string& request_id = "") {
    JobWrite w;
    w.job.set_id(id);
    w.job.set_state(state);
    w.job.mutable_spec()->set_client_request_id(request_id);
    if (candidate >= 0) {
      v1::CandidateSummary c;
      c.set_id(candidate);
      c.set_outcome("ok");
      w.candidate = c;
      w.search_state = "state after " + std::to_string(candidate);
    }
    return w;
  }

  std::string dir_;
  std::unique_ptr<JobStore> store_;
};

TEST_F(CommitQueueTest, BatchAppliesEachWriteAtomicallyAndKeepsTheOthers) {
  std::vector<JobWrite> writes = {Write("a", v1::SEARCHING, 0, "req"), Write("b", v1::QUEUED, -1, "req"),
                                  Write("a", v1::SEARCHING, 1)};
  // "b" collides on the client request id: it alone fails, a's two writes stay.
  writes[1].candidate = v1::CandidateSummary();
  std::vector<absl::Status> results;
  ASSERT_TRUE(store_->PutBatch(writes, &results).ok());
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0].ok()) << results[0];
  EXPECT_EQ(results[1].code(), absl::StatusCode::kAlreadyExists) << results[1];
  EXPECT_TRUE(results[2].ok()) << results[2];
  EXPECT_EQ(store_->GetJob("b").status().code(), absl::StatusCode::kNotFound);
  auto candidates = store_->ListCandidates("a");
  ASSERT_TRUE(candidates.ok());
  EXPECT_EQ(candidates->size(), 2u);
  EXPECT_EQ(*store_->GetSearchState("a"), "state after 1");
}

TEST_F(CommitQueueTest, CommitsInOrderAndPublishesAfterTheCommit) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<uint64_t> published;
  bool durable_when_published = true;
  {
    CommitQueue queue(store_.get(), [&](std::vector<CommitQueue::Entry>& batch, const std::vector<absl::Status>& st) {
      std::lock_guard<std::mutex> lock(mu);
      // Published only once durable: a second connection already sees it.
      auto reader = JobStore::Open(dir_ + "/jobs.db");
      for (size_t i = 0; i < batch.size(); ++i) {
        EXPECT_TRUE(st[i].ok()) << st[i];
        auto job = (*reader)->GetJob(batch[i].write.job.id());
        if (!job.ok() || job->state() != batch[i].write.job.state()) {
          // a later write of the same job may be committed already in the same batch
          bool later = false;
          for (size_t j = i + 1; j < batch.size(); ++j) later |= batch[j].write.job.id() == batch[i].write.job.id();
          if (!later) durable_when_published = false;
        }
        published.push_back(batch[i].seq);
      }
      cv.notify_all();
    });
    // 200 writes of one job: the last one (FAILED) must win, whatever the batching.
    for (int i = 0; i < 199; ++i) queue.Enqueue(Write("j", v1::SEARCHING, i), i + 1, v1::CandidateSummary());
    uint64_t last = queue.Enqueue(Write("j", v1::FAILED), 200, v1::CandidateSummary());
    EXPECT_EQ(last, 200u);
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return published.size() == 200; });
    EXPECT_LE(queue.batches(), 200u);
    EXPECT_EQ(queue.writes(), 200u);
  }
  for (size_t i = 0; i < published.size(); ++i) EXPECT_EQ(published[i], i + 1);
  EXPECT_TRUE(durable_when_published);
  EXPECT_EQ(store_->GetJob("j")->state(), v1::FAILED);
  EXPECT_EQ(store_->ListCandidates("j")->size(), 199u);
  EXPECT_EQ(*store_->GetSearchState("j"), "state after 198");
}

TEST_F(CommitQueueTest, WaitCommittedNeedsNoPublishAndReturnsOnceTheWriteIsDurable) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::vector<uint64_t> published;
  CommitQueue queue(store_.get(), [&](std::vector<CommitQueue::Entry>& batch, const std::vector<absl::Status>&) {
    std::unique_lock<std::mutex> lock(mu);
    for (const auto& entry : batch) published.push_back(entry.seq);
    cv.notify_all();
    cv.wait(lock, [&] { return release; });  // the "coordinator" is busy: publishing waits
  });
  const uint64_t first = queue.Enqueue(Write("w", v1::SEARCHING, 0), 1, v1::CandidateSummary());
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return !published.empty(); });
  }
  // Committed, its publication still blocked: the wait does not depend on it.
  queue.WaitCommitted(first);
  EXPECT_EQ(store_->ListCandidates("w")->size(), 1u);

  uint64_t last = first;
  for (int i = 1; i < 50; ++i) last = queue.Enqueue(Write("w", v1::SEARCHING, i), i + 1, v1::CandidateSummary());
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  queue.WaitCommitted(last);
  auto reader = JobStore::Open(dir_ + "/jobs.db");  // another connection sees all 50
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->ListCandidates("w")->size(), 50u);
}

TEST_F(CommitQueueTest, ARefusedWriteFailsAloneAndAnEmptyBatchDoesNothing) {
  std::vector<JobWrite> writes = {Write("x", v1::QUEUED)};
  writes[0].job.clear_id();  // refused by the store: the write fails, the commit still happens
  std::vector<absl::Status> results;
  ASSERT_TRUE(store_->PutBatch(writes, &results).ok());
  EXPECT_THAT(std::string(results[0].message()), HasSubstr("empty id"));
  std::vector<absl::Status> none;
  EXPECT_TRUE(store_->PutBatch({}, &none).ok());
  EXPECT_TRUE(none.empty());
}

}  // namespace
}  // namespace shrink::server
