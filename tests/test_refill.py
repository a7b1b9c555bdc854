"""A run resumed from a checkpoint without its replay buffer (a kept mark, a policy file, `checkpoint_buffer:
false`) collects `buffer_size` samples before it updates again, so that a trained actor is not fitted a thousand
steps on one iteration's episodes; a run stopped while refilling goes on refilling; `refill_on_resume=false`
updates at once."""

import csv
from pathlib import Path

import torch

from charctl.awr.checkpoint import load_checkpoint
from quick_training import train_cartpole

BUFFER = 4096


def cartpole(out: Path, resume: bool = False, changes: dict | None = None, **settings):
    return train_cartpole(out, resume, changes, **{"buffer_size": BUFFER, **settings})


def last(run: Path) -> dict:
    return load_checkpoint(run / "CartPole-v1-last.pt")


def rows_after(run: Path, samples: int) -> list[dict]:
    """progress.csv's rows of the iterations that began at or past `samples`, with the samples they began at."""
    rows, before = [], 0
    with open(run / "progress.csv", newline="") as file:
        for row in csv.DictReader(file):
            if before >= samples:
                rows.append({**row, "began_at": before})
            before = int(row["samples"])
    return rows


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_resume_without_the_buffer_refills_it_before_updating(tmp_path, capsys):
    run = tmp_path / "run"
    cartpole(run, samples=1024, checkpoint_buffer=False)
    before = last(run)
    assert before["buffer"] is None
    capsys.readouterr()

    # stopped while refilling: the networks as they were, the buffer kept from here on, the refill's end saved
    cartpole(run, resume=True, changes={"samples": before["samples"] + 1, "checkpoint_buffer": True})
    assert f"the next {BUFFER} samples refill it before the networks are updated again" in capsys.readouterr().out
    stopped = last(run)
    refill_until = before["samples"] + BUFFER
    assert stopped["refill_until"] == refill_until and stopped["samples"] < refill_until
    assert same_weights(stopped["agent"]["actor"], before["agent"]["actor"])
    assert same_weights(stopped["agent"]["critic"], before["agent"]["critic"])

    # going on: the refill ends where it was to, then every iteration updates
    cartpole(run, resume=True, changes={"samples": refill_until + 1500})
    assert "samples refill it" not in capsys.readouterr().out
    rows = rows_after(run, before["samples"])
    refilling = [r for r in rows if r["began_at"] < refill_until]
    updating = [r for r in rows if r["began_at"] >= refill_until]
    assert len(refilling) >= 2 and len(updating) >= 2
    assert all(int(r["actor_steps"]) == 0 == int(r["critic_steps"]) for r in refilling)
    assert [int(r["buffer_samples"]) for r in refilling] == sorted(int(r["buffer_samples"]) for r in refilling)
    assert all(int(r["actor_steps"]) > 0 and int(r["critic_steps"]) > 0 for r in updating)
    assert int(updating[0]["buffer_samples"]) > BUFFER // 2  # the first update fits a refilled buffer
    after = last(run)
    assert after["refill_until"] is None
    assert not same_weights(after["agent"]["actor"], before["agent"]["actor"])


def test_a_resume_with_its_buffer_or_asked_not_to_refill_updates_at_once(tmp_path, capsys):
    kept = tmp_path / "kept"
    cartpole(kept, samples=1024)
    at = last(kept)["samples"]
    cartpole(kept, resume=True, changes={"samples": at + 512})
    assert "samples refill it" not in capsys.readouterr().out
    assert int(rows_after(kept, at)[0]["actor_steps"]) > 0

    bufferless = tmp_path / "bufferless"
    cartpole(bufferless, samples=1024, checkpoint_buffer=False)
    at = last(bufferless)["samples"]
    capsys.readouterr()
    cartpole(bufferless, resume=True, changes={"samples": at + 512, "refill_on_resume": False})
    assert "samples refill it" not in capsys.readouterr().out
    assert int(rows_after(bufferless, at)[0]["actor_steps"]) > 0
