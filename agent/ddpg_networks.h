// The DDPG actor and critic: small MLPs over the per-layer state (LibTorch).
#pragma once

#include <torch/torch.h>

#include "agent/environment.h"

namespace shrink::agent {

// state -> action in [0, 1]^kActionSize (sigmoid output).
struct ActorImpl : torch::nn::Module {
  explicit ActorImpl(int hidden)
      : fc1(register_module("fc1", torch::nn::Linear(kStateSize, hidden))),
        fc2(register_module("fc2", torch::nn::Linear(hidden, hidden))),
        out(register_module("out", torch::nn::Linear(hidden, kActionSize))) {}
  torch::Tensor forward(const torch::Tensor& state) {
    return torch::sigmoid(out(torch::relu(fc2(torch::relu(fc1(state))))));
  }
  torch::nn::Linear fc1, fc2, out;
};
TORCH_MODULE(Actor);

// (state, action) -> the expected episode reward relative to the baseline.
struct CriticImpl : torch::nn::Module {
  explicit CriticImpl(int hidden)
      : fc1(register_module("fc1", torch::nn::Linear(kStateSize + kActionSize, hidden))),
        fc2(register_module("fc2", torch::nn::Linear(hidden, hidden))),
        out(register_module("out", torch::nn::Linear(hidden, 1))) {}
  torch::Tensor forward(const torch::Tensor& state, const torch::Tensor& action) {
    return out(torch::relu(fc2(torch::relu(fc1(torch::cat({state, action}, 1))))));
  }
  torch::nn::Linear fc1, fc2, out;
};
TORCH_MODULE(Critic);

}  // namespace shrink::agent
