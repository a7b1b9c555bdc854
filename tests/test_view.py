"""`charctl view` draws the character: its pixels differ from the empty scene's."""

import numpy as np
import pytest
from PIL import Image

from charctl.character.model import load_character
from charctl.cli import main
from charctl.motion.clip import load_clip
from charctl.sim.render import KinematicScene


@pytest.mark.parametrize("character,motion", [("humanoid", "spinkick"), ("dog", "trot")])
def test_view_png_shows_the_character(tmp_path, character, motion):
    out = tmp_path / "frame.png"
    assert main(["view", character, motion, "--out", str(out), "--at", "0.2"]) == 0
    image = np.asarray(Image.open(out).convert("RGB"), dtype=np.int16)
    with KinematicScene(load_character(character), show_character=False) as empty:
        background = empty.render(load_clip(character, motion).sample(0.2, velocities=False)).astype(np.int16)
    changed = np.abs(image - background).sum(axis=-1) > 30
    assert changed.mean() > 0.005  # the character covers a visible part of the frame
    assert changed.mean() < 0.5  # ... and the camera is not inside it


def test_view_gif_has_distinct_frames(tmp_path):
    out = tmp_path / "clip.gif"
    assert main(["view", "humanoid", "spinkick", "--out", str(out), "--seconds", "0.5", "--fps", "10"]) == 0
    frames = [np.asarray(f.convert("RGB"), dtype=np.int16) for f in _frames(Image.open(out))]
    assert len(frames) == 6
    assert np.abs(frames[0] - frames[-1]).sum() > 0


def test_view_unknown_clip_lists_clips(tmp_path, capsys):
    assert main(["view", "dog", "backflip", "--out", str(tmp_path / "x.gif")]) == 2
    err = capsys.readouterr().err
    assert "unknown clip 'backflip'" in err and "canter, trot, turn" in err
    assert not (tmp_path / "x.gif").exists()


def _frames(image):
    for i in range(image.n_frames):
        image.seek(i)
        yield image.copy()
