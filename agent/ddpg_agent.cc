#include "agent/ddpg_agent.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "agent/ddpg_networks.h"

namespace shrink::agent {
namespace {

// Bumped when the checkpoint layout changes.
constexpr int64_t kCheckpointFormat = 1;

// Fills a linear layer from `rng`: uniform in +-bound (fan-in scaled for
// hidden layers, small for the output layer, as in the DDPG paper).
void InitLinear(torch::nn::Linear& linear, std::mt19937_64& rng, double bound) {
  torch::NoGradGuard no_grad;
  std::uniform_real_distribution<float> u(static_cast<float>(-bound), static_cast<float>(bound));
  for (torch::Tensor* t : {&linear->weight, &linear->bias}) {
    std::vector<float> values(static_cast<size_t>(t->numel()));
    for (float& v : values) v = u(rng);
    t->copy_(torch::from_blob(values.data(), t->sizes(), torch::kFloat));
  }
}

template <typename Net>
void InitNet(Net& net, std::mt19937_64& rng) {
  InitLinear(net->fc1, rng, 1.0 / std::sqrt(static_cast<double>(net->fc1->options.in_features())));
  InitLinear(net->fc2, rng, 1.0 / std::sqrt(static_cast<double>(net->fc2->options.in_features())));
  InitLinear(net->out, rng, 3e-3);
}

// target <- (1 - tau) * target + tau * online, parameter by parameter.
void SoftUpdate(torch::nn::Module& target, const torch::nn::Module& online, double tau) {
  torch::NoGradGuard no_grad;
  auto t = target.parameters();
  auto o = online.parameters();
  for (size_t i = 0; i < t.size(); ++i) t[i].mul_(1.0 - tau).add_(o[i], tau);
}

void HardCopy(torch::nn::Module& target, const torch::nn::Module& online) { SoftUpdate(target, online, 1.0); }

torch::Tensor FloatTensor(const std::vector<float>& values) {
  return torch::from_blob(const_cast<float*>(values.data()), {static_cast<int64_t>(values.size())},
                          torch::kFloat)
      .clone();
}

std::vector<float> FloatVector(const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

torch::Tensor BytesTensor(const std::string& bytes) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(t.data_ptr<uint8_t>()));
  return t;
}

std::string BytesString(const torch::Tensor& t) {
  torch::Tensor c = t.contiguous();
  const char* p = reinterpret_cast<const char*>(c.data_ptr<uint8_t>());
  return std::string(p, p + c.numel());
}

}  // namespace

// Per-layer transitions in flat arrays, a ring of `capacity`.
struct ReplayBuffer {
  explicit ReplayBuffer(int capacity) : capacity(capacity) {}
  void Add(const Transition& t, float reward) {
    size_t at = static_cast<size_t>(next);
    if (size < capacity) {
      states.resize(states.size() + kStateSize);
      next_states.resize(next_states.size() + kStateSize);
      actions.resize(actions.size() + kActionSize);
      rewards.push_back(0);
      lasts.push_back(0);
      ++size;
    }
    std::copy(t.state.begin(), t.state.end(), states.begin() + at * kStateSize);
    std::copy(t.next_state.begin(), t.next_state.end(), next_states.begin() + at * kStateSize);
    std::copy(t.action.begin(), t.action.end(), actions.begin() + at * kActionSize);
    rewards[at] = reward;
    lasts[at] = t.last ? 1.f : 0.f;
    next = (next + 1) % capacity;
  }
  int capacity;
  int size = 0;
  int next = 0;  // slot written next
  std::vector<float> states, next_states, actions, rewards, lasts;
};

struct DdpgAgent::Impl {
  Impl(const DdpgOptions& o, uint64_t seed)
      : options(o),
        rng(seed),
        actor(o.hidden),
        critic(o.hidden),
        actor_target(o.hidden),
        critic_target(o.hidden),
        actor_optimizer(actor->parameters(), torch::optim::AdamOptions(o.actor_lr)),
        critic_optimizer(critic->parameters(), torch::optim::AdamOptions(o.critic_lr)),
        replay(o.replay_capacity),
        sigma(o.noise_sigma) {
    InitNet(actor, rng);
    InitNet(critic, rng);
    HardCopy(*actor_target, *actor);
    HardCopy(*critic_target, *critic);
  }

  DdpgOptions options;
  std::mt19937_64 rng;
  Actor actor;
  Critic critic;
  Actor actor_target;
  Critic critic_target;
  torch::optim::Adam actor_optimizer;
  torch::optim::Adam critic_optimizer;
  ReplayBuffer replay;
  double sigma;
  double baseline = 0;
  bool has_baseline = false;
};

DdpgAgent::DdpgAgent(const DdpgOptions& options, uint64_t seed)
    : impl_(std::make_unique<Impl>(options, seed)) {}

DdpgAgent::~DdpgAgent() = default;

ActionVector DdpgAgent::Act(const StateVector& state, bool explore) {
  ActionVector mean;
  {
    torch::NoGradGuard no_grad;
    impl_->actor->eval();
    std::vector<float> s(state.begin(), state.end());
    torch::Tensor out = impl_->actor->forward(FloatTensor(s).unsqueeze(0)).squeeze(0);
    for (int k = 0; k < kActionSize; ++k) mean[k] = out[k].item<float>();
  }
  if (!explore) return mean;
  // Truncated normal around the actor's action, inside [0, 1]: redraw until
  // it lands there (bounded; clamp as the last resort).
  std::normal_distribution<double> noise(0.0, impl_->sigma);
  for (int k = 0; k < kActionSize; ++k) {
    double v = mean[k];
    for (int attempt = 0; attempt < 64; ++attempt) {
      v = mean[k] + noise(impl_->rng);
      if (v >= 0.0 && v <= 1.0) break;
    }
    mean[k] = static_cast<float>(std::clamp(v, 0.0, 1.0));
  }
  return mean;
}

ActionVector DdpgAgent::RandomAction() {
  std::uniform_real_distribution<float> u(0.f, 1.f);
  ActionVector a;
  for (float& v : a) v = u(impl_->rng);
  return a;
}

void DdpgAgent::DecayNoise() {
  impl_->sigma = std::max(impl_->options.noise_min, impl_->sigma * impl_->options.noise_decay);
}

void DdpgAgent::Remember(const std::vector<Transition>& episode, double reward) {
  if (!impl_->has_baseline) {
    impl_->baseline = reward;
    impl_->has_baseline = true;
  }
  // Every layer's transition carries the episode's advantage over the moving
  // baseline, as AMC does: the reward arrives only once the policy is measured.
  float advantage = static_cast<float>(reward - impl_->baseline);
  for (const Transition& t : episode) impl_->replay.Add(t, advantage);
  double m = impl_->options.baseline_momentum;
  impl_->baseline = m * impl_->baseline + (1 - m) * reward;
}

void DdpgAgent::Train(int steps) {
  Impl& m = *impl_;
  if (m.replay.size == 0) return;
  m.actor->train();
  m.critic->train();
  const int batch = std::min(m.options.batch, m.replay.size);
  std::uniform_int_distribution<int> pick(0, m.replay.size - 1);
  std::vector<float> s(batch * kStateSize), s2(batch * kStateSize), a(batch * kActionSize),
      r(batch), last(batch);
  for (int step = 0; step < steps; ++step) {
    for (int b = 0; b < batch; ++b) {
      size_t i = static_cast<size_t>(pick(m.rng));
      std::copy_n(m.replay.states.begin() + i * kStateSize, kStateSize, s.begin() + b * kStateSize);
      std::copy_n(m.replay.next_states.begin() + i * kStateSize, kStateSize, s2.begin() + b * kStateSize);
      std::copy_n(m.replay.actions.begin() + i * kActionSize, kActionSize, a.begin() + b * kActionSize);
      r[b] = m.replay.rewards[i];
      last[b] = m.replay.lasts[i];
    }
    torch::Tensor state = FloatTensor(s).view({batch, kStateSize});
    torch::Tensor next_state = FloatTensor(s2).view({batch, kStateSize});
    torch::Tensor action = FloatTensor(a).view({batch, kActionSize});
    torch::Tensor reward = FloatTensor(r).view({batch, 1});
    torch::Tensor not_last = 1 - FloatTensor(last).view({batch, 1});

    torch::Tensor target;
    {
      torch::NoGradGuard no_grad;
      torch::Tensor next_q = m.critic_target->forward(next_state, m.actor_target->forward(next_state));
      target = reward + m.options.discount * not_last * next_q;
    }
    torch::Tensor critic_loss = torch::mse_loss(m.critic->forward(state, action), target);
    m.critic_optimizer.zero_grad();
    critic_loss.backward();
    m.critic_optimizer.step();

    torch::Tensor actor_loss = -m.critic->forward(state, m.actor->forward(state)).mean();
    m.actor_optimizer.zero_grad();
    actor_loss.backward();
    m.actor_optimizer.step();

    SoftUpdate(*m.actor_target, *m.actor, m.options.tau);
    SoftUpdate(*m.critic_target, *m.critic, m.options.tau);
  }
}

int DdpgAgent::transitions() const { return impl_->replay.size; }
double DdpgAgent::sigma() const { return impl_->sigma; }
double DdpgAgent::baseline() const { return impl_->baseline; }

absl::StatusOr<std::string> DdpgAgent::Save() const {
  Impl& m = *impl_;
  try {
    torch::serialize::OutputArchive archive;
    archive.write("format", torch::tensor({kCheckpointFormat, int64_t{kStateSize},
                                           int64_t{kActionSize}, int64_t{m.options.hidden}}));
    auto write_module = [&](const char* key, const torch::nn::Module& module) {
      torch::serialize::OutputArchive sub;
      module.save(sub);
      archive.write(key, sub);
    };
    write_module("actor", *m.actor);
    write_module("critic", *m.critic);
    write_module("actor_target", *m.actor_target);
    write_module("critic_target", *m.critic_target);
    auto write_optimizer = [&](const char* key, torch::optim::Optimizer& optimizer) {
      torch::serialize::OutputArchive sub;
      optimizer.save(sub);
      archive.write(key, sub);
    };
    write_optimizer("actor_optimizer", m.actor_optimizer);
    write_optimizer("critic_optimizer", m.critic_optimizer);
    archive.write("replay_states", FloatTensor(m.replay.states));
    archive.write("replay_next_states", FloatTensor(m.replay.next_states));
    archive.write("replay_actions", FloatTensor(m.replay.actions));
    archive.write("replay_rewards", FloatTensor(m.replay.rewards));
    archive.write("replay_lasts", FloatTensor(m.replay.lasts));
    archive.write("replay_cursor", torch::tensor({int64_t{m.replay.size}, int64_t{m.replay.next}}));
    archive.write("scalars", torch::tensor({m.sigma, m.baseline, m.has_baseline ? 1.0 : 0.0},
                                           torch::kDouble));
    std::ostringstream rng;
    rng << m.rng;
    archive.write("rng", BytesTensor(rng.str()));
    std::ostringstream out;
    archive.save_to(out);
    return out.str();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("saving the DDPG agent: ", e.what()));
  }
}

absl::Status DdpgAgent::Load(const std::string& bytes, bool networks_only) {
  Impl& m = *impl_;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(bytes.data(), bytes.size());
    torch::Tensor format;
    archive.read("format", format);
    if (format.numel() != 4 || format[0].item<int64_t>() != kCheckpointFormat ||
        format[1].item<int64_t>() != kStateSize || format[2].item<int64_t>() != kActionSize ||
        format[3].item<int64_t>() != m.options.hidden) {
      return absl::InvalidArgumentError(
          "agent checkpoint: written by an incompatible agent (format, state, action or hidden size differ)");
    }
    auto read_module = [&](const char* key, torch::nn::Module& module) {
      torch::serialize::InputArchive sub;
      archive.read(key, sub);
      module.load(sub);
    };
    read_module("actor", *m.actor);
    read_module("critic", *m.critic);
    read_module("actor_target", *m.actor_target);
    read_module("critic_target", *m.critic_target);
    auto read_optimizer = [&](const char* key, torch::optim::Optimizer& optimizer) {
      torch::serialize::InputArchive sub;
      archive.read(key, sub);
      optimizer.load(sub);
    };
    read_optimizer("actor_optimizer", m.actor_optimizer);
    read_optimizer("critic_optimizer", m.critic_optimizer);
    if (networks_only) return absl::OkStatus();

    // A fresh tensor per key: reading into a defined tensor would alias it.
    auto read = [&](const char* key) {
      torch::Tensor t;
      archive.read(key, t);
      return t;
    };
    ReplayBuffer replay(m.options.replay_capacity);
    replay.states = FloatVector(read("replay_states"));
    replay.next_states = FloatVector(read("replay_next_states"));
    replay.actions = FloatVector(read("replay_actions"));
    replay.rewards = FloatVector(read("replay_rewards"));
    replay.lasts = FloatVector(read("replay_lasts"));
    torch::Tensor cursor = read("replay_cursor");
    if (cursor.numel() != 2) return absl::DataLossError("agent checkpoint: replay_cursor has the wrong size");
    replay.size = static_cast<int>(cursor[0].item<int64_t>());
    replay.next = static_cast<int>(cursor[1].item<int64_t>());
    size_t n = static_cast<size_t>(std::max(0, replay.size));
    if (replay.size < 0 || replay.size > replay.capacity || replay.next < 0 ||
        replay.next >= replay.capacity || replay.states.size() != n * kStateSize ||
        replay.next_states.size() != n * kStateSize || replay.actions.size() != n * kActionSize ||
        replay.rewards.size() != n || replay.lasts.size() != n) {
      return absl::DataLossError("agent checkpoint: the replay buffer's arrays disagree in size");
    }
    torch::Tensor t = read("scalars");
    if (t.numel() != 3) return absl::DataLossError("agent checkpoint: scalars has the wrong size");
    m.sigma = t[0].item<double>();
    m.baseline = t[1].item<double>();
    m.has_baseline = t[2].item<double>() != 0;
    std::istringstream rng(BytesString(read("rng")));
    rng >> m.rng;
    if (rng.fail()) return absl::DataLossError("agent checkpoint: the RNG state does not parse");
    m.replay = std::move(replay);
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat("agent checkpoint does not load: ", e.what()));
  }
}

}  // namespace shrink::agent
