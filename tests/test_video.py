"""play --record: frames labelled (legend, episode and time, return so far, reset caption); the progress count is
the frames written."""

from pathlib import Path

import imageio.v3 as iio
import numpy as np

from charctl.play.playback import Player, record
from charctl.play.policy_file import open_policy
from charctl.play.scene import GHOST_RGBA

W, H = 160, 120


def record_video(path, labels, seconds=0.5, episodes=2, policy="dog_trot.pt"):
    task = open_policy(Path(__file__).resolve().parents[1] / "policies" / policy)
    env = task.make_env()
    calls = []
    try:
        player = Player(env, task.policy, env.unwrapped.config.horizon, seed=0, deterministic=True)
        count = record(player, path, seconds, episodes, W, H, 2.2, progress=lambda n, planned: calls.append(
            (n, planned)), labels=labels)
    finally:
        env.close()
    return count, calls, iio.imread(path)


def yellow(frames):
    f = frames.astype(int)
    return np.mean((f[..., 0] > 200) & (f[..., 1] > 180) & (f[..., 2] < 140), axis=(1, 2))


def test_recorded_frames_are_labelled_and_counted(tmp_path):
    count, calls, labelled = record_video(tmp_path / "labelled.gif", labels=True)
    _, _, plain = record_video(tmp_path / "plain.gif", labels=False)
    assert len(labelled) == len(plain) == count == 2 * (15 + 1)  # 0.5 s at 30 Hz, plus each start frame
    # the bar's count ends at the frames written, at 100%
    assert calls[-1] == (count, count) and [n for n, _ in calls] == list(range(1, count + 1))
    diff = np.abs(labelled.astype(int) - plain.astype(int)).sum(axis=-1)
    legend, right = diff[:, : H // 5, : W // 2], diff[:, : H // 5, W // 2:]
    assert np.mean(legend > 60) > 0.05 and np.mean(right > 60) > 0.05  # legend; episode, time and return
    ghost = np.array(GHOST_RGBA[:3]) * 255
    swatch = labelled[0, : H // 5, : W // 2].astype(int)
    assert np.any(np.abs(swatch - ghost).max(axis=-1) < 30)  # the ghost's colour in the legend
    # "reset" caption for the first ~0.5 s of the second episode only
    caption = yellow(labelled[:, -H // 6:])
    assert np.all(caption[:16] == 0) and caption[16] > 0.01 and caption[-1] == 0


def test_an_episode_that_ends_early_shortens_the_count(tmp_path):
    # the shipped dog canter policy falls within ~2 s from its held-out starts (seed 0)
    count, calls, frames = record_video(tmp_path / "fall.gif", labels=True, seconds=3.0, episodes=2,
                                        policy="dog_canter.pt")
    assert len(frames) == count < 2 * (90 + 1) and calls[-1] == (count, count)
    assert calls[0][1] == 2 * (90 + 1)  # planned in full at first


def test_a_gif_plays_at_the_clips_own_speed(tmp_path):
    from PIL import Image

    count, _, _ = record_video(tmp_path / "speed.gif", labels=False, seconds=1.0, episodes=1)
    image, shown = Image.open(tmp_path / "speed.gif"), 0
    for i in range(image.n_frames):
        image.seek(i)
        shown += image.info["duration"]
    assert abs(shown - count * 1000 / 30) <= 10  # GIF's 10 ms steps: 30 and 40 ms frames, not all 30 (11% fast)
