"""One minibatch step of the AWR losses on a ReLU MLP, with the gradients written out by hand.

Why: the paper's update is 1,200 tiny steps (batch 256, [128, 64]) per 2,048 samples, so per-step overhead,
not arithmetic, sets its cost. Autograd's graph building and the optimiser's bookkeeping doubled the cost
of a step here (docs/benchmarks.md); the hand-written backward pass below is the same maths in ~20 tensor
ops, checked against autograd in tests/test_awr_units.py.

The momentum buffers are the torch.optim.SGD optimiser's own (state[p]["momentum_buffer"], same update:
buf = momentum * buf + grad, p -= lr * buf), so checkpoints are unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class MLPStepper:
    """Gradient steps of one nn.Sequential (Linear, ReLU, ..., Linear) with its torch.optim.SGD optimiser."""

    def __init__(self, net: nn.Sequential, optimizer: torch.optim.SGD):
        self.linears = [m for m in net if isinstance(m, nn.Linear)]
        self.params = [p for m in self.linears for p in (m.weight, m.bias)]
        self.optimizer = optimizer
        group = optimizer.param_groups[0]
        if group["dampening"] or group["nesterov"] or group["weight_decay"] or len(optimizer.param_groups) > 1:
            raise ValueError("MLPStepper implements plain momentum SGD only")

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Output and the inputs of every layer (kept for the backward pass)."""
        inputs = [x]
        for layer in self.linears[:-1]:
            x = torch.addmm(layer.bias, x, layer.weight.t()).clamp_(min=0.0)
            inputs.append(x)
        last = self.linears[-1]
        return torch.addmm(last.bias, x, last.weight.t()), inputs

    @torch.no_grad()
    def step(self, inputs: list[torch.Tensor], grad_output: torch.Tensor) -> None:
        """Backpropagate d(loss)/d(output) and take one momentum-SGD step."""
        grads = []
        grad = grad_output
        for index in range(len(self.linears) - 1, -1, -1):
            layer, layer_input = self.linears[index], inputs[index]
            grads += [grad.sum(0), grad.t() @ layer_input]  # bias, weight (reversed below)
            if index:
                grad = (grad @ layer.weight).mul_(layer_input > 0)  # through the ReLU that made layer_input
        grads.reverse()
        self._sgd(grads)

    def _sgd(self, grads: list[torch.Tensor]) -> None:
        group = self.optimizer.param_groups[0]
        lr, momentum = group["lr"], group["momentum"]
        state = self.optimizer.state
        if momentum == 0:
            torch._foreach_add_(self.params, grads, alpha=-lr)
            return
        if "momentum_buffer" not in state[self.params[0]]:  # torch's first step: buf = grad
            for p, g in zip(self.params, grads):
                state[p]["momentum_buffer"] = g.clone()
        else:
            buffers = [state[p]["momentum_buffer"] for p in self.params]
            torch._foreach_mul_(buffers, momentum)
            torch._foreach_add_(buffers, grads)
        torch._foreach_add_(self.params, [state[p]["momentum_buffer"] for p in self.params], alpha=-lr)


def critic_step(stepper: MLPStepper, obs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0.5 * mean((target - V)^2) on a batch; returns the loss before the step."""
    out, inputs = stepper.forward(obs)
    diff = out.squeeze(-1) - targets
    stepper.step(inputs, (diff / len(diff)).unsqueeze(-1))
    return 0.5 * diff.square().mean()


def gaussian_actor_step(stepper: MLPStepper, obs: torch.Tensor, actions: torch.Tensor, weights: torch.Tensor,
                        std: float, bound_weight: float, l2_weight: float) -> torch.Tensor:
    """-mean(w log N(a; mu, std)) + bound_weight * bound penalty + l2_weight * 0.5 mean(|mu|^2); returns the loss."""
    mean, inputs = stepper.forward(obs)
    batch, size = mean.shape
    error = mean - actions
    scaled_w = weights / (batch * std * std)
    grad = error * scaled_w.unsqueeze(-1)
    neg_log_prob = 0.5 * error.square().sum(-1) / (std * std) + size * (math.log(std) + 0.5 * math.log(2 * math.pi))
    loss = (weights * neg_log_prob).mean()
    if bound_weight:
        excess = (mean - 1.0).clamp(min=0.0) + (mean + 1.0).clamp(max=0.0)
        grad.add_(excess, alpha=bound_weight / batch)
        loss = loss + bound_weight * 0.5 * excess.square().sum(-1).mean()
    if l2_weight:
        grad.add_(mean, alpha=l2_weight / batch)
        loss = loss + l2_weight * 0.5 * mean.square().sum(-1).mean()
    stepper.step(inputs, grad)
    return loss


def categorical_actor_step(stepper: MLPStepper, obs: torch.Tensor, actions: torch.Tensor, weights: torch.Tensor,
                           l2_weight: float) -> torch.Tensor:
    """-mean(w log softmax(logits)[a]) + l2_weight * 0.5 mean(|logits|^2); returns the loss."""
    logits, inputs = stepper.forward(obs)
    batch = len(logits)
    log_probs = torch.log_softmax(logits, dim=-1)
    taken = actions.long().unsqueeze(-1)
    loss = -(weights * log_probs.gather(-1, taken).squeeze(-1)).mean()
    grad = log_probs.exp().scatter_add_(-1, taken, -torch.ones_like(taken, dtype=logits.dtype))
    grad.mul_((weights / batch).unsqueeze(-1))
    if l2_weight:
        grad.add_(logits, alpha=l2_weight / batch)
        loss = loss + l2_weight * 0.5 * logits.square().sum(-1).mean()
    stepper.step(inputs, grad)
    return loss
