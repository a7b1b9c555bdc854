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
