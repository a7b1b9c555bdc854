"""One minibatch step of the AWR losses on a ReLU MLP, gradients written out by hand, in numpy (CPU learner).

Why: the paper's update is 1,200 tiny steps (batch 256, [128, 64]) per 2,048 samples, so per-op overhead, not
arithmetic, sets its cost: autograd's graph and torch's per-op dispatch cost a few times what the same maths as
~25 numpy calls on the parameters' own memory does (measured: docs/benchmarks.md). The losses are defined once in
torch (charctl.awr.policy.actor_loss); these steps are checked against it with autograd + torch.optim.SGD, step
for step, in tests/test_awr_units.py. A learner on a GPU uses autograd instead.

Parameters and the optimiser's momentum buffers are torch CPU tensors updated in place through numpy views
(torch's momentum SGD: buf = momentum * buf + grad, p -= lr * buf), so checkpoints are unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


class MLPStepper:
    """Gradient steps of one nn.Sequential (Linear, ReLU, ..., Linear) on the CPU with its torch.optim.SGD."""

    def __init__(self, net: nn.Sequential, optimizer: torch.optim.SGD):
        self.linears = [m for m in net if isinstance(m, nn.Linear)]
        self.params = [p for m in self.linears for p in (m.weight, m.bias)]
        self.optimizer = optimizer
        group = optimizer.param_groups[0]
        if group["dampening"] or group["nesterov"] or group["weight_decay"] or len(optimizer.param_groups) > 1:
            raise ValueError("MLPStepper implements plain momentum SGD only")
        # numpy views share the parameters' memory; load_state_dict copies into it, so they stay valid
        self._arrays = [p.detach().numpy() for p in self.params]
        self._weights, self._biases = self._arrays[0::2], self._arrays[1::2]

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Output and the inputs of every layer (kept for the backward pass)."""
        inputs = [x]
        for weight, bias in zip(self._weights[:-1], self._biases[:-1]):
            x = x @ weight.T
            x += bias
            np.maximum(x, 0.0, out=x)
            inputs.append(x)
        out = x @ self._weights[-1].T
        out += self._biases[-1]
        return out, inputs

    def step(self, inputs: list[np.ndarray], grad_output: np.ndarray, max_grad_norm: float | None = None) -> None:
        """Backpropagate d(loss)/d(output) and take one momentum-SGD step (the gradient first scaled to norm
        `max_grad_norm` if it is longer, as torch.nn.utils.clip_grad_norm_ does)."""
        grads = [None] * len(self._arrays)
        grad = grad_output
        for index in range(len(self._weights) - 1, -1, -1):
            layer_input = inputs[index]
            grads[2 * index], grads[2 * index + 1] = grad.T @ layer_input, grad.sum(0)
            if index:
                grad = grad @ self._weights[index]
                grad *= layer_input > 0  # through the ReLU that made layer_input
        if max_grad_norm is not None:
            norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
            if norm > max_grad_norm:
                scale = max_grad_norm / (norm + 1e-6)  # torch's clip_grad_norm_ formula
                grads = [g * scale for g in grads]
        self._sgd(grads)

    def _sgd(self, grads: list[np.ndarray]) -> None:
        group = self.optimizer.param_groups[0]
        lr, momentum, state = group["lr"], group["momentum"], self.optimizer.state
        for param, array, grad in zip(self.params, self._arrays, grads):
            if momentum == 0:
                array -= lr * grad
                continue
            if "momentum_buffer" not in state[param]:  # torch's first step: buf = grad
                state[param]["momentum_buffer"] = torch.from_numpy(grad.copy())
                buffer = grad
            else:
                buffer = state[param]["momentum_buffer"].numpy()
                buffer *= momentum
                buffer += grad
            array -= lr * buffer


def critic_step(stepper: MLPStepper, obs: np.ndarray, targets: np.ndarray) -> float:
    """0.5 * mean((target - V)^2) on a batch; returns the loss before the step."""
    out, inputs = stepper.forward(obs)
    diff = out[:, 0] - targets
    stepper.step(inputs, (diff / len(diff))[:, None])
    return 0.5 * float(np.dot(diff, diff)) / len(diff)


def gaussian_actor_step(stepper: MLPStepper, obs: np.ndarray, actions: np.ndarray, weights: np.ndarray,
                        std: float, bound_weight: float, l2_weight: float, max_grad_norm: float | None = None) -> float:
    """-mean(w log N(a; mu, std)) + bound_weight * bound penalty + l2_weight * 0.5 mean(|mu|^2); returns the loss."""
    mean, inputs = stepper.forward(obs)
    batch, size = mean.shape
    error = mean - actions
    squared = np.einsum("ij,ij->i", error, error)
    loss = float(np.dot(weights, squared)) * 0.5 / (std * std * batch) \
        + float(weights.mean()) * size * (math.log(std) + 0.5 * math.log(2 * math.pi))
    grad = error * (weights * (1.0 / (batch * std * std)))[:, None]
    if bound_weight:
        excess = np.maximum(mean - 1.0, 0.0) + np.minimum(mean + 1.0, 0.0)
        grad += excess * (bound_weight / batch)
        loss += bound_weight * 0.5 * float(np.vdot(excess, excess)) / batch
    if l2_weight:
        grad += mean * (l2_weight / batch)
        loss += l2_weight * 0.5 * float(np.vdot(mean, mean)) / batch
    stepper.step(inputs, grad.astype(np.float32, copy=False), max_grad_norm)
    return loss


def categorical_actor_step(stepper: MLPStepper, obs: np.ndarray, actions: np.ndarray, weights: np.ndarray,
                           l2_weight: float, max_grad_norm: float | None = None) -> float:
    """-mean(w log softmax(logits)[a]) + l2_weight * 0.5 mean(|logits|^2); returns the loss."""
    logits, inputs = stepper.forward(obs)
    batch = len(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    rows = np.arange(batch)
    log_taken = shifted[rows, actions] - np.log(total[:, 0])
    loss = -float(np.dot(weights, log_taken)) / batch
    grad = exp / total  # softmax
    grad[rows, actions] -= 1.0
    grad *= (weights / batch)[:, None]
    if l2_weight:
        grad += logits * (l2_weight / batch)
        loss += l2_weight * 0.5 * float(np.vdot(logits, logits)) / batch
    stepper.step(inputs, grad.astype(np.float32, copy=False), max_grad_norm)
    return loss
