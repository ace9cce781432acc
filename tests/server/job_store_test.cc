#include "server/storage/job_store.h"

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/files.h"

namespace shrink::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeTempDir("job_store_test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    db_path_ = dir_ + "/state/jobs.db";  // parent folder does not exist yet
  }
  void TearDown() override { RemoveAll(dir_); }

  std::unique_ptr<JobStore> OpenStore() {
    auto store = JobStore::Open(db_path_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  static v1::Job MakeJob(const std::string& id, int64_t created, v1::JobState state,
                         const std::string& request_id = "") {
    v1::Job job;
    job.set_id(id);
    job.set_state(state);
    job.set_created_unix_ms(created);
    job.set_updated_unix_ms(created);
    job.mutable_spec()->set_name("job " + id);
    job.mutable_spec()->set_client_request_id(request_id);
    return job;
  }

  static v1::CandidateSummary MakeCandidate(int64_t id, double reward) {
    v1::CandidateSummary candidate;
    candidate.set_id(id);
    candidate.set_reward(reward);
    candidate.set_outcome("ok");
    candidate.mutable_policy()->mutable_uniform()->set_prune(0.25);
    return candidate;
  }

  static std::vector<std::string> Ids(const std::vector<v1::Job>& jobs) {
    std::vector<std::string> ids;
    for (const auto& job : jobs) ids.push_back(job.id());
    return ids;
  }

  std::string dir_;
  std::string db_path_;
};

TEST_F(JobStoreTest, PutThenGetReturnsTheSameJob) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  v1::Job job = MakeJob("j1", 1000, v1::SEARCHING, "req-1");
  job.set_evaluated(7);
  job.mutable_best()->set_reward(0.8);
  ASSERT_TRUE(store->PutJob(job).ok());

  auto loaded = store->GetJob("j1");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->SerializeAsString(), job.SerializeAsString());
}

TEST_F(JobStoreTest, PutReplacesAndKeepsCandidates) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutJob(MakeJob("j1", 1000, v1::QUEUED)).ok());
  ASSERT_TRUE(store->PutCandidate("j1", MakeCandidate(1, 0.5)).ok());
  ASSERT_TRUE(store->PutSearchState("j1", "checkpoint").ok());

  ASSERT_TRUE(store->PutJob(MakeJob("j1", 1000, v1::SEARCHING)).ok());
  auto loaded = store->GetJob("j1");
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->state(), v1::SEARCHING);
  auto candidates = store->ListCandidates("j1");
  ASSERT_TRUE(candidates.ok());
  EXPECT_EQ(candidates->size(), 1u);
  EXPECT_TRUE(store->GetSearchState("j1").ok());
}

TEST_F(JobStoreTest, GetMissingJobIsNotFoundNamingTheId) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto loaded = store->GetJob("no-such-job");
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("no-such-job"));
}

TEST_F(JobStoreTest, EmptyIdIsRejected) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->PutJob(v1::Job()).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(JobStoreTest, ListsOldestFirstThenById) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutJob(MakeJob("c", 3000, v1::QUEUED)).ok());
  ASSERT_TRUE(store->PutJob(MakeJob("b", 1000, v1::SUCCEEDED)).ok());
  ASSERT_TRUE(store->PutJob(MakeJob("a", 1000, v1::FAILED)).ok());
  ASSERT_TRUE(store->PutJob(MakeJob("d", 2000, v1::CANCELLED)).ok());
  auto jobs = store->ListJobs();
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  EXPECT_THAT(Ids(*jobs), ElementsAre("a", "b", "d", "c"));
}

TEST_F(JobStoreTest, UnfinishedJobsExcludeTerminalStates) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutJob(MakeJob("queued", 1, v1::QUEUED)).ok());
  ASSERT_TRUE(store->PutJob(MakeJob("searching", 2, v1::SEARCHING)).ok());
  ASSERT_TRUE(store->PutJob(MakeJob("finalizing", 3, v1::FINALIZING)).ok());
  ASSERT_TRUE(store->PutJob(MakeJob("succeeded", 4, v1::SUCCEEDED)).ok());
  ASSERT_TRUE(store->PutJob(MakeJob("failed", 5, v1::FAILED)).ok());
  ASSERT_TRUE(store->PutJob(MakeJob("cancelled", 6, v1::CANCELLED)).ok());
  auto jobs = store->ListUnfinishedJobs();
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  EXPECT_THAT(Ids(*jobs), ElementsAre("queued", "searching", "finalizing"));

  // A job that finishes leaves the list.
  ASSERT_TRUE(store->PutJob(MakeJob("searching", 2, v1::SUCCEEDED)).ok());
  jobs = store->ListUnfinishedJobs();
  ASSERT_TRUE(jobs.ok());
  EXPECT_THAT(Ids(*jobs), ElementsAre("queued", "finalizing"));
}

TEST_F(JobStoreTest, FindsJobByClientRequestId) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutJob(MakeJob("j1", 1, v1::QUEUED, "req-1")).ok());
  ASSERT_TRUE(store->PutJob(MakeJob("j2", 2, v1::QUEUED)).ok());
  ASSERT_TRUE(store->PutJob(MakeJob("j3", 3, v1::QUEUED)).ok());  // two empty ids coexist

  auto found = store->FindJobByRequestId("req-1");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, "j1");

  auto missing = store->FindJobByRequestId("req-2");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("req-2"));
  EXPECT_EQ(store->FindJobByRequestId("").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(JobStoreTest, RequestIdBelongsToOneJob) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutJob(MakeJob("j1", 1, v1::QUEUED, "req-1")).ok());
  absl::Status duplicate = store->PutJob(MakeJob("j2", 2, v1::QUEUED, "req-1"));
  EXPECT_EQ(duplicate.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(duplicate.message()), HasSubstr("req-1"));
  EXPECT_EQ(store->GetJob("j2").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(JobStoreTest, CandidatesAreListedByIdAndReplaced) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutJob(MakeJob("j1", 1, v1::SEARCHING)).ok());
  ASSERT_TRUE(store->PutJob(MakeJob("j2", 2, v1::SEARCHING)).ok());
  ASSERT_TRUE(store->PutCandidate("j1", MakeCandidate(10, 0.1)).ok());
  ASSERT_TRUE(store->PutCandidate("j1", MakeCandidate(2, 0.2)).ok());
  ASSERT_TRUE(store->PutCandidate("j1", MakeCandidate(7, 0.3)).ok());
  ASSERT_TRUE(store->PutCandidate("j2", MakeCandidate(1, 0.9)).ok());
  ASSERT_TRUE(store->PutCandidate("j1", MakeCandidate(2, 0.25)).ok());  // replaces

  auto candidates = store->ListCandidates("j1");
  ASSERT_TRUE(candidates.ok()) << candidates.status();
  ASSERT_EQ(candidates->size(), 3u);
  EXPECT_EQ((*candidates)[0].id(), 2);
  EXPECT_DOUBLE_EQ((*candidates)[0].reward(), 0.25);
  EXPECT_EQ((*candidates)[1].id(), 7);
  EXPECT_EQ((*candidates)[2].id(), 10);
  EXPECT_DOUBLE_EQ((*candidates)[2].policy().uniform().prune(), 0.25);

  auto none = store->ListCandidates("no-such-job");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(JobStoreTest, CandidateOfUnknownJobIsNotFound) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  absl::Status status = store->PutCandidate("ghost", MakeCandidate(1, 0));
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr("ghost"));
}

TEST_F(JobStoreTest, SearchStateIsReplacedOnEachPut) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutJob(MakeJob("j1", 1, v1::SEARCHING)).ok());
  EXPECT_EQ(store->GetSearchState("j1").status().code(), absl::StatusCode::kNotFound);

  std::string binary("first\0with\xffnul", 15);
  ASSERT_TRUE(store->PutSearchState("j1", binary).ok());
  auto state = store->GetSearchState("j1");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(*state, binary);

  ASSERT_TRUE(store->PutSearchState("j1", "second").ok());
  state = store->GetSearchState("j1");
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(*state, "second");

  ASSERT_TRUE(store->PutSearchState("j1", "").ok());  // empty is a valid state
  state = store->GetSearchState("j1");
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(*state, "");

  EXPECT_EQ(store->PutSearchState("ghost", "x").code(), absl::StatusCode::kNotFound);
}

TEST_F(JobStoreTest, PutCandidateAndJobIsAtomic) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  // A new job and its first candidate together.
  v1::Job job = MakeJob("j1", 1, v1::SEARCHING);
  job.set_evaluated(1);
  ASSERT_TRUE(store->PutCandidateAndJob(MakeCandidate(1, 0.5), job).ok());
  EXPECT_EQ(store->GetJob("j1")->evaluated(), 1);
  EXPECT_EQ(store->ListCandidates("j1")->size(), 1u);

  // When the job part fails (request id taken), the candidate is not stored either.
  ASSERT_TRUE(store->PutJob(MakeJob("j2", 2, v1::QUEUED, "taken")).ok());
  v1::Job conflicting = MakeJob("j1", 1, v1::SEARCHING, "taken");
  conflicting.set_evaluated(2);
  EXPECT_FALSE(store->PutCandidateAndJob(MakeCandidate(2, 0.6), conflicting).ok());
  EXPECT_EQ(store->GetJob("j1")->evaluated(), 1);
  EXPECT_EQ(store->ListCandidates("j1")->size(), 1u);

  // The store is usable after the rollback.
  job.set_evaluated(2);
  ASSERT_TRUE(store->PutCandidateAndJob(MakeCandidate(2, 0.6), job).ok());
  EXPECT_EQ(store->ListCandidates("j1")->size(), 2u);
}

TEST_F(JobStoreTest, ReopenedStoreFindsEverything) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->PutJob(MakeJob("j1", 1, v1::SEARCHING, "req-1")).ok());
    ASSERT_TRUE(store->PutJob(MakeJob("j2", 2, v1::SUCCEEDED)).ok());
    ASSERT_TRUE(store->PutCandidate("j1", MakeCandidate(3, 0.7)).ok());
    ASSERT_TRUE(store->PutSearchState("j1", "agent checkpoint").ok());
  }
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->GetJob("j1")->state(), v1::SEARCHING);
  EXPECT_THAT(Ids(*store->ListJobs()), ElementsAre("j1", "j2"));
  EXPECT_THAT(Ids(*store->ListUnfinishedJobs()), ElementsAre("j1"));
  EXPECT_EQ(*store->FindJobByRequestId("req-1"), "j1");
  auto candidates = store->ListCandidates("j1");
  ASSERT_TRUE(candidates.ok());
  ASSERT_EQ(candidates->size(), 1u);
  EXPECT_DOUBLE_EQ((*candidates)[0].reward(), 0.7);
  EXPECT_EQ(*store->GetSearchState("j1"), "agent checkpoint");
}

TEST_F(JobStoreTest, CorruptFileGivesClearError) {
  ASSERT_TRUE(MakeDirs(dir_ + "/state").ok());
  {
    std::ofstream out(db_path_, std::ios::binary);
    out << std::string(8192, 'x');  // not an SQLite header
  }
  auto store = JobStore::Open(db_path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(db_path_));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("not a database"));
}

TEST_F(JobStoreTest, UnwritableLocationGivesClearError) {
  ASSERT_TRUE(MakeDirs(dir_ + "/state").ok());
  ASSERT_TRUE(MakeDirs(db_path_).ok());  // a directory where the file should be
  auto store = JobStore::Open(db_path_);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(db_path_));
}

TEST_F(JobStoreTest, ConcurrentWritersAreSerialized) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutJob(MakeJob("j1", 1, v1::SEARCHING)).ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&store, t] {
      for (int i = 0; i < 25; ++i) {
        v1::Job job = MakeJob("j1", 1, v1::SEARCHING);
        job.set_evaluated(t * 25 + i);
        EXPECT_TRUE(store->PutCandidateAndJob(MakeCandidate(t * 25 + i, 0.1), job).ok());
        EXPECT_TRUE(store->GetJob("j1").ok());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(store->ListCandidates("j1")->size(), 100u);
}

}  // namespace
}  // namespace shrink::server
