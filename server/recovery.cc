// Recovery after a restart: every unfinished job found in the store is resumed,
// its search restored from its checkpoint or by replaying the recorded results.
// A Coordinator member (coordinator.h), run once by Create.
#include "server/coordinator.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "common/api_names.h"
#include "common/log.h"
#include "common/status.h"

namespace shrink::server {

absl::Status Coordinator::Recover() {
  SHRINK_ASSIGN_OR_RETURN(std::vector<v1::Job> all, store_->ListJobs());
  SHRINK_ASSIGN_OR_RETURN(std::vector<v1::Job> unfinished, store_->ListUnfinishedJobs());
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& job : all) {
    if (IsTerminal(job.state())) finished_by_state_[JobStateName(job.state())]++;
  }
  auto log_resumed = [](const JobRuntime& runtime) {
    SHRINK_LOG(INFO) << "resuming job " << runtime.job.id() << " ("
                     << JobStateName(runtime.job.state()) << ", " << runtime.job.evaluated() << "/"
                     << runtime.job.spec().budget() << " evaluated)";
  };
  for (v1::Job& job : unfinished) {
    JobRuntime& runtime = jobs_[job.id()];
    runtime.job = std::move(job);
    runtime.job.set_in_flight(0);
    runtime.visible_job = runtime.job;  // as stored: durable
    runtime.visible_version = runtime.version;
    if (runtime.job.state() == v1::SEARCHING || runtime.job.state() == v1::FINALIZING) {
      auto search = MakeSearchLocked(runtime.job);
      if (!search.ok()) {
        FailJobLocked(runtime, std::string(search.status().message()));
        continue;
      }
      runtime.search = std::move(*search);
      SHRINK_ASSIGN_OR_RETURN(auto candidates, store_->ListCandidates(runtime.job.id()));
      int64_t next = 0;
      for (const auto& c : candidates) next = std::max(next, c.id() + 1);
      runtime.next_candidate_id = next;
      // A learning search continues from its checkpoint, stored with the
      // last recorded candidate, so it has observed every one of them.
      auto checkpoint = store_->GetSearchState(runtime.job.id());
      if (checkpoint.ok() && !checkpoint->empty()) {
        absl::Status restored = runtime.search->RestoreState(*checkpoint);
        if (restored.ok()) {
          SHRINK_LOG(INFO) << "job " << runtime.job.id() << ": " << runtime.job.spec().search()
                           << " search restored from its checkpoint (" << checkpoint->size()
                           << " bytes, " << runtime.search->proposals() << " proposals)";
          log_resumed(runtime);
          continue;
        }
        SHRINK_LOG(WARNING) << "job " << runtime.job.id() << ": checkpoint does not restore ("
                            << restored.message() << "); replaying the recorded results instead";
        auto fresh = MakeSearchLocked(runtime.job);
        if (!fresh.ok()) {
          FailJobLocked(runtime, std::string(fresh.status().message()));
          continue;
        }
        runtime.search = std::move(*fresh);
      }
      // Replay the search: the same proposals in the same order, so the
      // next proposal is the one after the last candidate recorded.
      for (int64_t i = 0; i < next; ++i) runtime.search->Propose();
      for (const auto& c : candidates) {
        if (c.outcome() == "ok") runtime.search->Observe(c.policy(), c.evaluation(), c.reward());
      }
    }
    log_resumed(runtime);
  }
  PumpLocked();
  return absl::OkStatus();
}

}  // namespace shrink::server
