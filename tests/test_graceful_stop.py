"""SIGTERM (kill, docker stop, a scheduler) stops `charctl train` after the iteration in flight, keeping its
samples; a second SIGTERM ends the process at once; the handler is only there while a run trains."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

import charctl.awr.trainer as trainer_module
from charctl.awr.checkpoint import load_checkpoint
from charctl.awr.graceful_stop import stop_on_sigterm
from charctl.cli import main

QUICK = ["--no-progress", "--set", "samples_per_iter=512", "--set", "critic_steps=5", "--set", "actor_steps=10",
         "--set", "eval_every=0", "--set", "eval_episodes=1"]


def progress_rows(run) -> int:
    return len((run / "progress.csv").read_text().splitlines()) - 1


def test_sigterm_while_entered_is_a_request_nested_entries_reinstall_and_the_first_handler_comes_back():
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_sigterm as stop:
        assert not stop.requested
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as ray.init does: a handler of its own
        with stop_on_sigterm:  # puts the handler back
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.requested  # the handler ran, the process lives on
        assert stop.requested and signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before
    with stop_on_sigterm:
        assert not stop_on_sigterm.requested  # a new outermost entry starts without a request


@pytest.mark.parametrize("signals", [1, 2])
def test_a_second_sigterm_ends_the_process_at_once(signals):
    script = textwrap.dedent(f"""
        import os, signal
        from charctl.awr.graceful_stop import stop_on_sigterm
        with stop_on_sigterm as stop:
            for _ in range({signals}):
                os.kill(os.getpid(), signal.SIGTERM)
            print("still here", stop.requested)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    if signals == 1:
        assert (done.returncode, done.stdout.strip()) == (0, "still here True"), done.stderr
    else:
        assert (done.returncode, done.stdout) == (-signal.SIGTERM, "")


def test_train_finishes_the_iteration_in_flight_then_stops_and_a_resume_goes_on(tmp_path, capsys, monkeypatch):
    update = trainer_module._Run.update

    def update_then_sigterm_in_the_third(self, new_samples):
        if self.iteration == 2:  # mid-iteration: collected, not yet updated, tested or saved
            os.kill(os.getpid(), signal.SIGTERM)
        return update(self, new_samples)

    monkeypatch.setattr(trainer_module._Run, "update", update_then_sigterm_in_the_third)
    before = signal.getsignal(signal.SIGTERM)
    run = tmp_path / "run"
    argv = ["train", "gym", "CartPole-v1", "--samples", "10240", "--seed", "3", "--workers", "0", "--out", str(run)]
    assert main([*argv, *QUICK]) == 128 + signal.SIGTERM
    out = capsys.readouterr().out
    assert "stopped by SIGTERM after the iteration in flight" in out and "holds iteration 3 (" in out, out
    state = load_checkpoint(run / "CartPole-v1-last.pt")
    assert state["iteration"] == progress_rows(run) == 3  # the third iteration, in flight at the signal, is kept
    assert signal.getsignal(signal.SIGTERM) is before

    monkeypatch.setattr(trainer_module._Run, "update", update)
    assert main(["train", "gym", "CartPole-v1", "--resume", "--out", str(run), "--no-progress"]) == 0
    state = load_checkpoint(run / "CartPole-v1-last.pt")
    assert state["iteration"] == progress_rows(run) and state["samples"] >= 10240
