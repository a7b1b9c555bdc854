"""`charctl average`: one policy from the mean of a run's kept policies' actor weights."""

from pathlib import Path

import numpy as np
import pytest
import torch

from charctl.awr.checkpoint import load_checkpoint, policy_from_checkpoint, save_checkpoint
from charctl.cli import main
from charctl.play.policy_file import open_policy

POLICIES = Path(__file__).resolve().parents[1] / "policies"


def perturbed(state: dict, seed: int, extra_samples: int) -> dict:
    """The same run's policy a few iterations on: other actor weights, same normaliser."""
    generator = torch.Generator().manual_seed(seed)
    actor, critic = ({key: value + 0.01 * torch.randn(value.shape, generator=generator, dtype=value.dtype)
                      for key, value in state["agent"][net].items()} for net in ("actor", "critic"))
    return {**state, "agent": {**state["agent"], "actor": actor, "critic": critic},
            "samples": state["samples"] + extra_samples}


@pytest.fixture
def marks(tmp_path):
    base = load_checkpoint(POLICIES / "earlier" / "dog_trot-5M" / "dog_trot.pt")  # [128, 64]: 0.01 is a nudge
    paths = []
    for index, state in enumerate([base, perturbed(base, 1, 2000), perturbed(base, 2, 1000)]):
        paths.append(tmp_path / f"mark{index}.pt")
        save_checkpoint(paths[-1], state)
    return paths


def test_the_average_is_the_mean_weight_by_weight_and_keeps_the_latest_rest(marks, tmp_path, capsys):
    out = tmp_path / "avg.pt"
    assert main(["average", *map(str, marks), "--out", str(out)]) == 0
    assert "the mean of 3 policies" in capsys.readouterr().out
    states = [load_checkpoint(p) for p in marks]
    result = load_checkpoint(out)
    for key, value in result["agent"]["actor"].items():
        mean = sum(s["agent"]["actor"][key].double() for s in states) / 3
        assert torch.allclose(value.double(), mean, atol=1e-6), key
        assert not torch.equal(value, states[0]["agent"]["actor"][key])
    # the rest is the latest policy's (most samples, the second named), and the file says what it averages
    assert result["samples"] == states[1]["samples"]
    assert torch.equal(result["agent"]["critic"]["net.0.weight"], states[1]["agent"]["critic"]["net.0.weight"])
    assert [entry["samples"] for entry in result["averaged_from"]] == [s["samples"] for s in states]
    assert result["buffer"] is None


def test_a_policy_averaged_with_copies_of_itself_acts_exactly_as_before(marks, tmp_path):
    copy = tmp_path / "copy.pt"
    copy.write_bytes(marks[0].read_bytes())
    out = tmp_path / "same.pt"
    assert main(["average", str(marks[0]), str(copy), "--out", str(out)]) == 0
    before, after = policy_from_checkpoint(load_checkpoint(marks[0])), policy_from_checkpoint(load_checkpoint(out))
    observations = np.random.default_rng(0).normal(size=(64, load_checkpoint(out)["observation_size"]))
    assert np.array_equal(before.act(observations), after.act(observations))


def test_the_averaged_policy_runs_in_its_env(marks, tmp_path):
    out = tmp_path / "avg.pt"
    assert main(["average", *map(str, marks), "--out", str(out)]) == 0
    task = open_policy(out)
    env = task.make_env()
    observation, _ = env.reset(seed=0)
    for _ in range(30):
        observation, reward, terminated, truncated, _ = env.step(task.policy.act(observation))
        assert 0.0 <= reward <= 1.0
        assert not terminated  # that trot's neighbours stay up through the first second
    env.close()


def other_normalizer(state: dict) -> dict:
    normalizer = {**state["agent"]["normalizer"], "mean": state["agent"]["normalizer"]["mean"] + 0.5}
    return {**state, "agent": {**state["agent"], "normalizer": normalizer}}


@pytest.mark.parametrize("make_bad, message", [
    (other_normalizer, "its observation normaliser differs from"),
    (lambda state: load_checkpoint(POLICIES / "dog_turn.pt"), "a policy for ('charctl/Imitate-v0', 'dog', 'turn')"),
])
def test_policies_of_other_runs_are_refused_and_nothing_is_written(marks, tmp_path, capsys, make_bad, message):
    bad = tmp_path / "bad.pt"
    save_checkpoint(bad, make_bad(load_checkpoint(marks[0])))
    out = tmp_path / "avg.pt"
    assert main(["average", str(marks[0]), str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: " in err and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_bad_requests_are_one_line_errors_and_an_existing_file_is_kept(marks, tmp_path, capsys):
    out = tmp_path / "avg.pt"
    out.write_bytes(b"keep me")
    cases = [([str(marks[0])], "at least two policies"),
             ([str(marks[0]), str(marks[0])], "named twice"),
             ([str(marks[0]), str(marks[1])], "already exists (pass --force"),
             ([str(marks[0]), str(tmp_path / "nosuch.pt")], "nosuch.pt: no such checkpoint")]
    for args, message in cases:
        force = [] if "already exists" in message else ["--force"]
        assert main(["average", *args, "--out", str(out), *force]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert out.read_bytes() == b"keep me"
    assert main(["average", str(marks[0]), str(marks[1]), "--out", str(marks[1]), "--force"]) == 2
    assert "one of the policies to average" in capsys.readouterr().err
