"""Headless pictures of a character: PyBullet's TinyRenderer in DIRECT mode, no display needed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pybullet_data

from charctl.character.model import Character
from charctl.character.pose import Pose
from charctl.sim.bullet_pose import apply_pose
from charctl.util.errors import CharctlError
from charctl.util.fileio import atomic_path
from charctl.util.quiet import NativeOutputSilenced, import_pybullet

pybullet = import_pybullet()  # without its build banner


@dataclass
class Camera:
    width: int = 320
    height: int = 240
    distance: float = 3.0
    yaw: float = 30.0  # degrees about the world z axis (0 looks along +y)
    pitch: float = -15.0
    fov: float = 60.0


class KinematicScene:
    """A ground plane and one character posed directly (no physics), rendered with TinyRenderer."""

    def __init__(self, character: Character, camera: Camera | None = None, show_character: bool = True):
        self.character = character
        self.camera = camera or Camera()
        with NativeOutputSilenced():
            self.client = pybullet.connect(pybullet.DIRECT)
            pybullet.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=self.client)
            pybullet.loadURDF("plane.urdf", physicsClientId=self.client)
            self.body = None
            if show_character:
                self.body = pybullet.loadURDF(str(character.urdf_path), flags=pybullet.URDF_USE_INERTIA_FROM_FILE,
                                              physicsClientId=self.client)

    def render(self, pose: Pose) -> np.ndarray:
        """An RGB image (H, W, 3) of the character in `pose`, the camera looking at its root."""
        if self.body is not None:
            apply_pose(self.client, self.body, self.character, pose)
        return render_client(self.client, pose.root_pos, self.camera)

    def close(self) -> None:
        if self.client is not None:
            pybullet.disconnect(self.client)
            self.client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def render_client(client: int, target: np.ndarray, camera: Camera | None = None,
                  renderer: int = pybullet.ER_TINY_RENDERER) -> np.ndarray:
    """An RGB image (H, W, 3) of whatever a PyBullet client holds, the camera looking at `target`.

    TinyRenderer needs no display; a GUI client can pass ER_BULLET_HARDWARE_OPENGL to use its window's renderer."""
    cam = camera or Camera()
    look_at = [float(target[0]), float(target[1]), 0.7 * float(target[2])]
    view = pybullet.computeViewMatrixFromYawPitchRoll(look_at, cam.distance, cam.yaw, cam.pitch, 0, 2,
                                                      physicsClientId=client)
    proj = pybullet.computeProjectionMatrixFOV(cam.fov, cam.width / cam.height, 0.05, 50.0, physicsClientId=client)
    _, _, rgba, _, _ = pybullet.getCameraImage(cam.width, cam.height, view, proj, renderer=renderer,
                                               physicsClientId=client)
    return np.asarray(rgba, dtype=np.uint8).reshape(cam.height, cam.width, 4)[..., :3]


def gif_durations(count: int, fps: float) -> list[int]:
    """Each frame's display time in ms. GIF counts in hundredths of a second, so 30 fps as one rounded number
    plays 11% fast (30 ms a frame); rounding the running total instead keeps the clip's own time (30, 40, 30, ...)."""
    ends = [round(100.0 * (i + 1) / fps) * 10 for i in range(count)]
    return [end - start for start, end in zip([0] + ends[:-1], ends)]


def write_frames(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """A .gif, .mp4 or .png (first frame) written atomically; the extension picks the format."""
    import imageio.v3 as iio

    suffix = path.suffix.lower()
    if suffix not in (".gif", ".png", ".mp4"):
        raise CharctlError(f"{path}: output must end in .gif, .png or .mp4")
    with atomic_path(path) as tmp:
        if suffix == ".png":
            iio.imwrite(tmp, frames[0], extension=".png")
        elif suffix == ".gif":
            iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=gif_durations(len(frames), fps), loop=0)
        else:
            try:
                # the temp file's name does not end in .mp4, so name the container for ffmpeg
                iio.imwrite(tmp, np.stack(frames), extension=".mp4", fps=fps, codec="libx264",
                            output_params=["-f", "mp4"], macro_block_size=8)
            except Exception as err:  # imageio needs its ffmpeg plugin for mp4
                raise CharctlError(f"{path}: cannot write mp4 ({err}); use .gif") from None
