"""AWR building blocks against hand-computed values: TD(lambda), buffer, weights, bound penalty, likelihoods."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from charctl.awr.agent import AWRAgent, action_bound_penalty, advantage_weights
from charctl.awr.buffer import Episode, EpisodeBuffer, flatten
from charctl.awr.config import AWRConfig, load_config, parse_overrides
from charctl.awr.policy import Actor, ActionSpec, NumpyPolicy, ObsNormalizer, gaussian_log_prob
from charctl.awr.returns import lambda_returns
from charctl.errors import CharctlError


def episode(obs, actions, rewards, final, terminated):
    return Episode(np.asarray(obs, np.float32).reshape(len(rewards), -1), np.asarray(actions, np.float32),
                   np.asarray(rewards, np.float32), np.asarray(final, np.float32), terminated)


# --- TD(lambda)

def test_td_lambda_terminated_and_truncated_by_hand():
    # episode A terminated after rewards 1, 2 (value after it is 0, whatever the critic says about s_T);
    # episode B truncated after rewards 3, 4 (bootstraps from V(s_T) = 40). gamma 0.9, lambda 0.5.
    rewards = np.array([1.0, 2.0, 3.0, 4.0])
    values = np.array([10.0, 20.0, 5.0, 6.0])
    final_values = np.array([99.0, 40.0])
    terminated = np.array([True, False])
    starts, lengths = np.array([0, 2]), np.array([2, 2])
    g = lambda_returns(rewards, values, final_values, terminated, starts, lengths, discount=0.9, td_lambda=0.5)
    # A: G1 = 2 + 0.9 * 0 = 2;   G0 = 1 + 0.9 * (0.5 * 20 + 0.5 * 2) = 10.9
    # B: G1 = 4 + 0.9 * 40 = 40; G0 = 3 + 0.9 * (0.5 * 6 + 0.5 * 40) = 23.7
    np.testing.assert_allclose(g, [10.9, 2.0, 23.7, 40.0])
    mc = lambda_returns(rewards, values, final_values, terminated, starts, lengths, discount=0.9, td_lambda=1.0)
    np.testing.assert_allclose(mc, [1 + 0.9 * 2, 2.0, 3 + 0.9 * 40, 40.0])  # lambda 1: discounted sums


def test_td_lambda_matches_the_reference_loop_on_random_episodes():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 40, size=25)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rewards, values = rng.normal(size=lengths.sum()), rng.normal(size=lengths.sum())
    final_values, terminated = rng.normal(size=25), rng.random(25) < 0.5
    got = lambda_returns(rewards, values, final_values, terminated, starts, lengths, 0.99, 0.95)
    for s, n, fv, term in zip(starts, lengths, final_values, terminated):
        v = np.append(values[s:s + n], 0.0 if term else fv)
        expected = np.zeros(n)
        expected[-1] = rewards[s + n - 1] + 0.99 * v[-1]
        for t in reversed(range(n - 1)):
            expected[t] = rewards[s + t] + 0.99 * (0.05 * v[t + 1] + 0.95 * expected[t + 1])
        np.testing.assert_allclose(got[s:s + n], expected, rtol=1e-12)


# --- replay buffer

def test_buffer_evicts_whole_oldest_episodes():
    buffer = EpisodeBuffer(capacity=10)
    eps = [episode(np.full(4, i), np.zeros(4), np.full(4, i), [i], False) for i in range(3)]
    buffer.add(eps[:2])
    assert len(buffer) == 8 and buffer.num_episodes == 2
    buffer.add(eps[2:])  # 12 > 10: the oldest whole episode goes, nothing is cut
    assert len(buffer) == 8
    assert [e.rewards[0] for e in buffer.episodes()] == [1.0, 2.0]
    flat = buffer.flat()
    np.testing.assert_array_equal(flat.episode_lengths, [4, 4])
    np.testing.assert_array_equal(flat.rewards, [1] * 4 + [2] * 4)


def test_buffer_keeps_the_newest_batch_even_above_capacity():
    buffer = EpisodeBuffer(capacity=3)
    buffer.add([episode(np.zeros(2), np.zeros(2), np.ones(2), [0], True)])
    buffer.add([episode(np.zeros(5), np.zeros(5), np.ones(5), [0], True)])
    assert len(buffer) == 5 and buffer.num_episodes == 1


def test_update_never_trains_on_final_observations():
    """Final observations (marked 99) are read by the critic for bootstrapping but never fitted."""
    space = gym.spaces.Box(-1.0, 1.0, (2,))
    config = AWRConfig(critic_steps=20, actor_steps=20, actor_batch_size=8, critic_batch_size=8,
                       samples_per_iter=12)
    agent = AWRAgent(space, space, config)
    agent.normalizer = ObsNormalizer(2)  # identity, so the marker is recognisable in network inputs
    rng = np.random.default_rng(0)
    eps = [Episode(rng.uniform(-1, 1, (n, 2)).astype(np.float32), rng.uniform(-1, 1, (n, 2)).astype(np.float32),
                   np.ones(n, np.float32), np.full(2, 99.0, np.float32), bool(n % 2)) for n in (3, 4, 5)]
    buffer = EpisodeBuffer(50)
    buffer.add(eps)
    trained_on, evaluated = [], []

    def record(module, inputs, output):
        (trained_on if torch.is_grad_enabled() else evaluated).append(inputs[0].detach().clone())

    agent.actor.register_forward_hook(record)
    agent.critic.register_forward_hook(record)
    agent.update(buffer, new_samples=12)
    trained = torch.cat(trained_on)
    assert len(trained) == 2 * 20 * 8
    assert not torch.any(trained == 99.0)
    assert torch.any(torch.cat(evaluated) == 99.0)  # the bootstrap did look at them


# --- weights, penalty, likelihoods

def test_weights_normalise_exponentiate_and_clip():
    config = AWRConfig(temperature=0.5, weight_clip=20.0)
    advantages = np.array([-1.0, 0.0, 1.0, 10.0])
    weights, stats = advantage_weights(advantages, config)
    normalised = (advantages - advantages.mean()) / (advantages.std() + 1e-5)
    expected = np.minimum(np.exp(normalised / 0.5), 20.0)
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    assert weights.max() == 20.0 and stats["clipped_fraction"] == 0.25
    assert stats["weight_max"] == pytest.approx(np.exp(normalised[-1] / 0.5), rel=1e-6)  # before the clip
    raw, _ = advantage_weights(advantages, AWRConfig(normalize_advantages=False, weight_clip=1e9))
    np.testing.assert_allclose(raw, np.exp(advantages), rtol=1e-6)


def test_action_bound_penalty_by_hand():
    mean = torch.tensor([[0.5, 1.5], [-2.0, 0.0]], requires_grad=True)
    penalty = action_bound_penalty(mean)
    # excess (0, 0.5) and (-1, 0): squared sums 0.25 and 1; 0.5 * mean = 0.3125
    assert float(penalty.detach()) == pytest.approx(0.3125)
    penalty.backward()
    np.testing.assert_allclose(mean.grad.numpy(), [[0.0, 0.25], [-0.5, 0.0]])  # zero inside the bounds


def test_gaussian_log_likelihood_matches_torch_distributions():
    mean, actions = torch.randn(6, 3), torch.randn(6, 3)
    expected = torch.distributions.Normal(mean, 0.4).log_prob(actions).sum(-1)
    torch.testing.assert_close(gaussian_log_prob(mean, actions, 0.4), expected)


def test_categorical_log_likelihood_matches_torch_distributions():
    actor = Actor(4, ActionSpec(discrete=True, size=5), [8], 0.01, 0.0)
    logits, actions = torch.randn(7, 5), torch.randint(0, 5, (7,))
    expected = torch.distributions.Categorical(logits=logits).log_prob(actions)
    torch.testing.assert_close(actor.log_prob(logits, actions), expected)


def test_numpy_policy_matches_torch_actor_and_samples_its_distribution():
    action = ActionSpec.from_space(gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32)))
    torch.manual_seed(0)
    actor = Actor(3, action, [16, 8], init_output_scale=1.0, action_std=0.3)
    normalizer = ObsNormalizer(3, init_mean=np.array([1.0, 0, 0]), init_std=np.array([2.0, 1, 1]))
    policy = NumpyPolicy.from_actor(actor, normalizer)
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    normalised = (obs - np.array([1.0, 0, 0], np.float32)) / np.array([2.0, 1, 1], np.float32)
    expected = actor(torch.from_numpy(normalised))
    np.testing.assert_allclose(policy.output(obs), expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    # samples: mean action +- 0.3 normalised std, i.e. scale (2, 0.5) in env units; env actions are clipped
    rng = np.random.default_rng(1)
    draws = np.array([policy.sample(obs[0], rng)[1] for _ in range(4000)])
    mean_env = action.centre + action.scale * policy.output(obs[0])
    np.testing.assert_allclose(draws.mean(0), mean_env, atol=0.05)
    np.testing.assert_allclose(draws.std(0), 0.3 * action.scale, rtol=0.05)
    env_action = policy.sample(obs[0] * 100, rng)[0]
    assert np.all(env_action >= action.low) and np.all(env_action <= action.high)


def test_numpy_policy_categorical_sampling_frequencies():
    actor = Actor(2, ActionSpec(discrete=True, size=3), [4], init_output_scale=3.0, action_std=0.0)
    policy = NumpyPolicy.from_actor(actor, ObsNormalizer(2))
    obs = np.array([0.3, -0.7], np.float32)
    probs = torch.softmax(torch.from_numpy(policy.output(obs)), -1).numpy()
    rng = np.random.default_rng(0)
    counts = np.bincount([int(policy.sample(obs, rng)[0]) for _ in range(6000)], minlength=3) / 6000
    np.testing.assert_allclose(counts, probs, atol=0.02)
    assert int(policy.act(obs)) == int(np.argmax(probs))


def test_normalizer_running_statistics_and_floor():
    data = np.random.default_rng(0).normal(3.0, 2.0, size=(1000, 2))
    data[:, 1] = 5.0  # constant: std floored
    normalizer = ObsNormalizer(2, std_floor=0.01)
    for chunk in np.split(data, 4):
        normalizer.record(chunk)
        normalizer.update()
    np.testing.assert_allclose(normalizer.mean, data.mean(0))
    np.testing.assert_allclose(normalizer.std, [data[:, 0].std(), 0.01], rtol=1e-9)


# --- configuration

def test_shipped_reference_configs_load():
    hopper = load_config("Hopper-v5")
    assert (hopper.actor_lr, hopper.action_std, hopper.critic_steps, hopper.buffer_size) == (1e-4, 0.4, 200, 50000)
    lunar = load_config("LunarLander-v3")
    assert (lunar.actor_lr, lunar.action_l2_weight, lunar.normalizer_samples) == (5e-4, 1e-3, 100000)
    assert load_config("Pendulum-v1").actor_lr == AWRConfig().actor_lr  # no file: defaults


def test_config_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("actor_lr: 0.1\nactr_steps: 5\n")
    with pytest.raises(CharctlError, match=r"bad.yaml: unknown key 'actr_steps'"):
        load_config(None, bad)
    bad.write_text("actor_steps: lots\n")
    with pytest.raises(CharctlError, match=r"bad.yaml: actor_steps: expected int"):
        load_config(None, bad)
    with pytest.raises(CharctlError, match=r"--set: unknown key 'tempreature'"):
        load_config(None, None, parse_overrides(["tempreature=0.5"]))
    with pytest.raises(CharctlError, match=r"returns must be one of"):
        load_config(None, None, {"returns": "n_step"})
    assert load_config(None, None, parse_overrides(["temperature=1", "value_scale=null"])).temperature == 1.0


def test_unsupported_action_spaces_are_one_line_errors():
    with pytest.raises(CharctlError, match="must be bounded"):
        ActionSpec.from_space(gym.spaces.Box(-np.inf, np.inf, (2,)))
    with pytest.raises(CharctlError, match="not supported"):
        ActionSpec.from_space(gym.spaces.MultiDiscrete([2, 3]))


def test_flatten_marks_episode_ends():
    flat = flatten([episode(np.zeros(2), np.zeros(2), np.ones(2), [0], True),
                    episode(np.zeros(3), np.zeros(3), np.ones(3), [0], False)])
    np.testing.assert_array_equal(flat.is_last, [False, True, False, False, True])
    assert math.isclose(float(flat.rewards.sum()), 5.0)


def test_learner_device_is_the_gpu_only_when_torch_sees_one():
    import torch

    from charctl.awr.agent import resolve_device
    from charctl.errors import CharctlError

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(CharctlError, match="torch sees no GPU"):
            resolve_device("cuda")
