#include "server/coordinator_metrics.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace shrink::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Scrape(const CoordinatorMetrics& metrics) {
  return prometheus::TextSerializer().Serialize(metrics.registry()->Collect());
}

TEST(CoordinatorMetricsTest, EveryFamilyExistsBeforeAnyEvent) {
  CoordinatorMetrics metrics;
  std::string text = Scrape(metrics);
  for (const char* family :
       {"# TYPE shrink_jobs gauge", "# TYPE shrink_jobs_submitted_total counter",
        "# TYPE shrink_candidates_dispatched_total counter",
        "# TYPE shrink_candidates_completed_total counter",
        "# TYPE shrink_candidate_evaluation_seconds histogram", "# TYPE shrink_queue_depth gauge",
        "# TYPE shrink_workers_connected gauge", "# TYPE shrink_worker_slots gauge",
        "# TYPE shrink_worker_slots_busy gauge", "# TYPE shrink_worker_heartbeats_total counter",
        "# TYPE shrink_blob_bytes_received_total counter",
        "# TYPE shrink_blob_bytes_sent_total counter"}) {
    EXPECT_THAT(text, HasSubstr(family));
  }
  for (const char* state : {"queued", "searching", "finalizing", "succeeded", "failed",
                            "cancelled"}) {
    EXPECT_THAT(text, HasSubstr(std::string("shrink_jobs{state=\"") + state + "\"} 0"));
  }
  for (const char* kind : {"describe", "evaluate", "finalize"}) {
    EXPECT_THAT(text, HasSubstr(std::string("shrink_candidates_dispatched_total{kind=\"") + kind +
                                "\"} 0"));
  }
  for (const char* outcome : {"ok", "failed", "lease_expired"}) {
    EXPECT_THAT(text, HasSubstr(std::string("shrink_candidates_completed_total{outcome=\"") +
                                outcome + "\"} 0"));
  }
  EXPECT_THAT(text, HasSubstr("shrink_candidate_evaluation_seconds_bucket{le=\"0.05\"} 0"));
  EXPECT_THAT(text, HasSubstr("shrink_candidate_evaluation_seconds_bucket{le=\"600\"} 0"));
  // shrink_job_best_reward has one series per running job; with none running,
  // prometheus-cpp leaves the childless family out of the scrape.
  EXPECT_THAT(text, Not(HasSubstr("shrink_job_best_reward")));
}

TEST(CoordinatorMetricsTest, EventsShowUpInTheScrape) {
  CoordinatorMetrics metrics;
  metrics.SetJobsByState({{"searching", 2}, {"SUCCEEDED", 5}});
  metrics.JobSubmitted();
  metrics.JobSubmitted();
  metrics.CandidateDispatched("evaluate");
  metrics.CandidateDispatched("some-new-kind");
  metrics.CandidateCompleted("lease_expired");
  metrics.ObserveEvaluationSeconds(3.0);
  metrics.SetQueueDepth(4);
  metrics.HeartbeatReceived();
  metrics.SetWorkers(3, 6, 5);
  metrics.BlobBytesReceived(1000);
  metrics.BlobBytesSent(250);
  std::string text = Scrape(metrics);

  EXPECT_THAT(text, HasSubstr("shrink_jobs{state=\"searching\"} 2"));
  EXPECT_THAT(text, HasSubstr("shrink_jobs{state=\"succeeded\"} 5"));
  EXPECT_THAT(text, HasSubstr("shrink_jobs{state=\"queued\"} 0"));
  EXPECT_THAT(text, HasSubstr("shrink_jobs_submitted_total 2"));
  EXPECT_THAT(text, HasSubstr("shrink_candidates_dispatched_total{kind=\"evaluate\"} 1"));
  EXPECT_THAT(text, HasSubstr("shrink_candidates_dispatched_total{kind=\"other\"} 1"));
  EXPECT_THAT(text, Not(HasSubstr("some-new-kind")));
  EXPECT_THAT(text, HasSubstr("shrink_candidates_completed_total{outcome=\"lease_expired\"} 1"));
  EXPECT_THAT(text, HasSubstr("shrink_candidate_evaluation_seconds_count 1"));
  EXPECT_THAT(text, HasSubstr("shrink_candidate_evaluation_seconds_bucket{le=\"2.5\"} 0"));
  EXPECT_THAT(text, HasSubstr("shrink_candidate_evaluation_seconds_bucket{le=\"5\"} 1"));
  EXPECT_THAT(text, HasSubstr("shrink_queue_depth 4"));
  EXPECT_THAT(text, HasSubstr("shrink_worker_heartbeats_total 1"));
  EXPECT_THAT(text, HasSubstr("shrink_workers_connected 3"));
  EXPECT_THAT(text, HasSubstr("shrink_worker_slots 6"));
  EXPECT_THAT(text, HasSubstr("shrink_worker_slots_busy 5"));
  EXPECT_THAT(text, HasSubstr("shrink_blob_bytes_received_total 1000"));
  EXPECT_THAT(text, HasSubstr("shrink_blob_bytes_sent_total 250"));

  // A later snapshot replaces the earlier one: states it omits drop to 0.
  metrics.SetJobsByState({{"queued", 1}});
  text = Scrape(metrics);
  EXPECT_THAT(text, HasSubstr("shrink_jobs{state=\"queued\"} 1"));
  EXPECT_THAT(text, HasSubstr("shrink_jobs{state=\"searching\"} 0"));
}

TEST(CoordinatorMetricsTest, ClearJobRemovesItsBestRewardSeries) {
  CoordinatorMetrics metrics;
  metrics.SetBestReward("job-a", 0.5);
  metrics.SetBestReward("job-b", 0.25);
  metrics.SetBestReward("job-a", 0.75);
  std::string text = Scrape(metrics);
  EXPECT_THAT(text, HasSubstr("shrink_job_best_reward{job_id=\"job-a\"} 0.75"));
  EXPECT_THAT(text, HasSubstr("shrink_job_best_reward{job_id=\"job-b\"} 0.25"));

  metrics.ClearJob("job-a");
  metrics.ClearJob("job-a");        // twice is fine
  metrics.ClearJob("never-seen");   // so is an unknown job
  text = Scrape(metrics);
  EXPECT_THAT(text, Not(HasSubstr("job_id=\"job-a\"")));
  EXPECT_THAT(text, HasSubstr("shrink_job_best_reward{job_id=\"job-b\"} 0.25"));

  // A job that comes back gets a fresh series.
  metrics.SetBestReward("job-a", 0.1);
  EXPECT_THAT(Scrape(metrics), HasSubstr("shrink_job_best_reward{job_id=\"job-a\"} 0.1"));
}

TEST(CoordinatorMetricsTest, PerJobProgressSeriesAndTheirRemoval) {
  CoordinatorMetrics metrics;
  metrics.SetJobProgress("job-a", 3, 16);
  metrics.SetLastCandidate("job-a", 0.2, 0.97);
  metrics.SetJobBest("job-a", 1.25, 0.18, 0.99);
  std::string text = Scrape(metrics);
  EXPECT_THAT(text, HasSubstr("shrink_job_evaluated{job_id=\"job-a\"} 3"));
  EXPECT_THAT(text, HasSubstr("shrink_job_budget{job_id=\"job-a\"} 16"));
  EXPECT_THAT(text, HasSubstr("shrink_job_candidate_size_ratio{job_id=\"job-a\"} 0.2"));
  EXPECT_THAT(text, HasSubstr("shrink_job_candidate_retention{job_id=\"job-a\"} 0.97"));
  EXPECT_THAT(text, HasSubstr("shrink_job_best_reward{job_id=\"job-a\"} 1.25"));
  EXPECT_THAT(text, HasSubstr("shrink_job_best_size_ratio{job_id=\"job-a\"} 0.18"));
  EXPECT_THAT(text, HasSubstr("shrink_job_best_retention{job_id=\"job-a\"} 0.99"));
  metrics.ClearJob("job-a");
  EXPECT_THAT(Scrape(metrics), Not(HasSubstr("job_id=\"job-a\"")));
}

}  // namespace
}  // namespace shrink::server
