// The "ddpg" search: the AMC/HAQ-style learning agent. Each proposal is one
// episode through the Environment (layers in order, actions clamped to the
// size budget); the first episodes are random (warm-up), later ones come from
// the actor plus decaying truncated-normal noise. Results may arrive in any
// order and while other proposals are in flight: an observation re-walks its
// policy to recover the episode's transitions, stores them with the reward,
// and trains the networks.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/ddpg_agent.h"
#include "agent/environment.h"
#include "agent/search.h"
#include "common/status.h"

namespace shrink::agent {
namespace {

// Marks the search's own checkpoint framing around the agent's bytes. The version is the
// action scale's: v2 (offered bit widths, budget-relative prune) reads a v1 agent's outputs
// differently, so a v1 checkpoint is refused; a resumed job then replays its recorded results
// into a fresh agent (Coordinator::Recover), and a transfer says why it cannot start.
constexpr char kMagic[] = "shrink-ddpg-search-v2\n";
constexpr char kOldMagic[] = "shrink-ddpg-search-v1\n";
// Gradient steps per observed episode are capped, so very deep models stay
// cheap to observe.
constexpr int kMaxUpdatesPerObservation = 256;

void AppendInt64(std::string* out, int64_t v) { out->append(reinterpret_cast<const char*>(&v), 8); }

// The number of random warm-up episodes for a budget: a quarter of it,
// at least 2 and at most 100 (AMC uses 100 of 400 episodes).
int WarmupFor(int budget) { return std::clamp(budget / 4, 2, 100); }

class DdpgSearch : public Search {
 public:
  explicit DdpgSearch(const SearchContext& context)
      : env_(context.model, context.goal.target_size()),
        agent_(DdpgOptions(), context.seed),
        warmup_(WarmupFor(context.budget)) {}

  // Starts from another job's agent: its networks, no warm-up.
  absl::Status Transfer(const std::string& bytes) {
    auto agent_bytes = Unframe(bytes, nullptr);
    if (!agent_bytes.ok()) return agent_bytes.status();
    SHRINK_RETURN_IF_ERROR(agent_.Load(*agent_bytes, /*networks_only=*/true));
    warmup_ = 0;
    return absl::OkStatus();
  }

  std::string name() const override { return "ddpg"; }

  v1::Policy Propose() override {
    bool warm = proposals_ < warmup_;
    env_.Reset();
    while (!env_.Done()) {
      StateVector state = env_.State();
      env_.Step(warm ? agent_.RandomAction() : agent_.Act(state, /*explore=*/true));
    }
    if (!warm) agent_.DecayNoise();
    ++proposals_;
    return env_.ToPolicy();
  }

  void Observe(const v1::Policy& policy, const v1::Evaluation&, double reward) override {
    if (!std::isfinite(reward)) return;
    auto transitions = env_.Replay(policy);
    if (!transitions.ok()) return;  // not a policy of this model: nothing to learn
    agent_.Remember(*transitions, reward);
    ++observed_;
    agent_.Train(std::min(kMaxUpdatesPerObservation,
                          DdpgOptions().updates_per_layer * env_.layers()));
  }

  absl::StatusOr<std::string> SaveState() const override {
    SHRINK_ASSIGN_OR_RETURN(std::string agent, agent_.Save());
    std::string out = kMagic;
    AppendInt64(&out, proposals_);
    AppendInt64(&out, observed_);
    AppendInt64(&out, warmup_);
    out += agent;
    return out;
  }

  absl::Status RestoreState(const std::string& bytes) override {
    int64_t counters[3];
    auto agent_bytes = Unframe(bytes, counters);
    if (!agent_bytes.ok()) return agent_bytes.status();
    SHRINK_RETURN_IF_ERROR(agent_.Load(*agent_bytes, /*networks_only=*/false));
    proposals_ = counters[0];
    observed_ = counters[1];
    warmup_ = static_cast<int>(counters[2]);
    return absl::OkStatus();
  }

  int64_t proposals() const override { return proposals_; }

 private:
  // Splits SaveState bytes into the counters and the agent's own bytes.
  static absl::StatusOr<std::string> Unframe(const std::string& bytes, int64_t* counters) {
    const size_t magic = sizeof(kMagic) - 1;
    if (bytes.compare(0, sizeof(kOldMagic) - 1, kOldMagic) == 0) {
      return absl::InvalidArgumentError(
          "agent checkpoint: written by an older agent (v1) whose actions are on another scale");
    }
    if (bytes.size() < magic + 24 || bytes.compare(0, magic, kMagic) != 0) {
      return absl::InvalidArgumentError("agent checkpoint: not a ddpg search checkpoint");
    }
    if (counters != nullptr) std::memcpy(counters, bytes.data() + magic, 24);
    return bytes.substr(magic + 24);
  }

  Environment env_;
  DdpgAgent agent_;
  int warmup_;
  int64_t proposals_ = 0;
  int64_t observed_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Search>> NewDdpgSearch(const SearchContext& context) {
  auto search = std::make_unique<DdpgSearch>(context);
  if (!context.init_state.empty()) {
    if (auto s = search->Transfer(context.init_state); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("init agent: ", s.message()));
    }
  }
  return search;
}

}  // namespace shrink::agent
