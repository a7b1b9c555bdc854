"""What a command prints is its own: PyBullet's build banner and GUI chatter never reach the console."""

import os
import subprocess
import sys

from charctl.util.quiet import NativeOutputSilenced


def charctl(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "charctl", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


def test_native_writes_are_dropped_and_python_prints_still_show(capfd):
    with NativeOutputSilenced():
        os.write(1, b"from C on fd 1\n")
        os.write(2, b"from C on fd 2\n")
        print("from Python")
        print("from Python to stderr", file=sys.stderr)
    os.write(1, b"after\n")
    out, err = capfd.readouterr()
    assert "from C" not in out + err
    assert "from Python" in out and "from Python to stderr" in err and "after" in out


def test_commands_print_no_pybullet_banner(tmp_path):
    motions = charctl("motions")
    assert motions.returncode == 0 and "build time" not in motions.stdout + motions.stderr
    assert motions.stderr == "" and "trot" in motions.stdout
    view = charctl("view", "dog", "trot", "--out", str(tmp_path / "trot.png"), "--width", "64", "--height", "48")
    assert view.returncode == 0 and view.stderr == ""  # loads PyBullet and the dog
    assert view.stdout.strip().splitlines() == [f"wrote {tmp_path / 'trot.png'} (1 frame, 64x48)"]
    failing = charctl("play", "missing.pt", "--record", str(tmp_path / "x.gif"))
    assert failing.returncode == 2 and failing.stdout == ""
    assert len(failing.stderr.strip().splitlines()) == 1 and "build time" not in failing.stderr


def test_training_messages_label_their_numbers():
    from pathlib import Path

    from charctl.awr.trainer import TrainResult, _postfix

    imitation = TrainResult(Path("."), "dog_trot", 3, 6000, test_returns=[(6000, 15.2)], test_episodes=10,
                            horizon=600)
    assert imitation.final_test_text() == "normalised test return 0.025 (10 deterministic episodes)"
    gym = TrainResult(Path("."), "Hopper-v5", 3, 6000, test_returns=[(6000, 1234.6)], test_episodes=10)
    assert gym.final_test_text() == "test return 1234.6 (10 deterministic episodes)"
    assert TrainResult(Path("."), "x", 0, 0).final_test_text() is None
    row = {"samples_per_second": "812.345", "train_normalized_return": "0.0213456", "train_return": "12.8"}
    assert _postfix(row, imitation, 600) == {"samples/s": "812", "train return (normalised)": "0.0213",
                                             "test return (normalised)": "0.0253"}
    assert _postfix(row, gym, None) == {"samples/s": "812", "train return": "12.8", "test return": "1235"}
