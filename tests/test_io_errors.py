"""I/O faults are one line naming the path and the cause, and leave no half-written file behind."""

import errno
import os

import pytest
import torch

from charctl.awr.checkpoint import save_checkpoint
from charctl.cli import main
from charctl.util.fileio import atomic_write_text

QUICK = ["--no-progress", "--workers", "0", "--samples", "512", "--set", "samples_per_iter=512", "--set",
         "critic_steps=2", "--set", "actor_steps=2", "--set", "eval_episodes=1"]


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_a_file_given_as_out_is_refused(tmp_path, capsys):
    out = tmp_path / "notes.txt"
    out.write_text("mine")
    assert main(["train", "gym", "CartPole-v1", "--out", str(out), *QUICK]) == 2
    assert f"{out}: is a file, not a run directory" in one_line(capsys)
    assert out.read_text() == "mine" and os.listdir(tmp_path) == ["notes.txt"]


def test_an_out_inside_a_file_names_the_path(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["train", "gym", "CartPole-v1", "--out", str(tmp_path / "file" / "run"), *QUICK]) == 2
    assert "file" in one_line(capsys)


def test_a_read_only_run_folder_is_one_line(tmp_path, capsys, monkeypatch):
    import charctl.util.fileio as fileio

    def refuse(*args, **kwargs):  # the tests run as root, which chmod cannot stop: refuse like a read-only mount
        raise PermissionError(errno.EROFS, "Read-only file system", str(tmp_path / "run"))

    monkeypatch.setattr(fileio.tempfile, "mkstemp", refuse)
    assert main(["train", "gym", "CartPole-v1", "--out", str(tmp_path / "run"), *QUICK]) == 2
    assert one_line(capsys) == f"charctl: error: {tmp_path / 'run'}: Read-only file system"


@pytest.mark.parametrize("writer", ["text", "checkpoint"])
def test_a_full_disk_names_the_file_and_leaves_no_temporary(tmp_path, monkeypatch, writer):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    target = tmp_path / ("a.txt" if writer == "text" else "a.pt")
    if writer == "text":
        monkeypatch.setattr("pathlib.Path.write_text", full)
        call = lambda: atomic_write_text(target, "x")  # noqa: E731
    else:
        monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk full")))
        call = lambda: save_checkpoint(target, {"format": "x"})  # noqa: E731
    with pytest.raises(OSError) as info:
        call()
    assert info.value.filename == str(target)
    assert os.listdir(tmp_path) == []


def test_a_full_disk_during_training_is_one_line(tmp_path, capsys, monkeypatch):
    import charctl.awr.checkpoint as checkpoint

    def full(*args, **kwargs):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(checkpoint.torch, "save", full)
    assert main(["train", "gym", "CartPole-v1", "--out", str(tmp_path / "run"), *QUICK]) == 2
    err = one_line(capsys)
    assert "CartPole-v1" in err and "could not write the checkpoint" in err
    assert not list((tmp_path / "run").glob(".*.tmp"))
