"""What a picture of play shows, apart from the physics: a world of its own with the ground, a copy of the character
and its translucent ghost (the reference clip), posed from a Frame and never simulated.

Videos render one in a DIRECT client with TinyRenderer; the window (charctl/play/window.py) holds one in a GUI client.
The ghost lives here rather than in the physics world, where it would be a second multibody integrated at every
physics step (3-4x the dog's control step time, docs/benchmarks.md "play").
"""

from __future__ import annotations

from dataclasses import dataclass

import pybullet_data

from charctl.character.model import Character
from charctl.sim.bullet_pose import BodyPose, set_body_pose
from charctl.util.quiet import NativeOutputSilenced, import_pybullet

pybullet = import_pybullet()  # without its build banner

GHOST_RGBA = (0.35, 0.65, 1.0, 0.35)
# Beside the character as the default camera (yaw 30 degrees) sees it: along the picture's horizontal axis, to the
# right and so ahead of the character, which falls back from it rather than into it when it lags the clip.
GHOST_OFFSET = (1.0, 0.6, 0.0)
TEXT_OFFSET = (0.0, -0.8, 0.9)  # the status line starts here from the character (left-aligned): up and to its left


@dataclass
class Frame:
    """One picture: the character, its ghost (None: hidden), the point the camera looks at and a status line."""

    character: BodyPose
    ghost: BodyPose | None
    target: list[float]
    text: str = ""
    text_position: list[float] | None = None


class Scene:
    """The ground, the character and (with `ghost`) its ghost in PyBullet client `client`, posed by `show`."""

    def __init__(self, character: Character, client: int, ghost: bool = True):
        self.client = client
        p = dict(physicsClientId=client)
        with NativeOutputSilenced():
            pybullet.setAdditionalSearchPath(pybullet_data.getDataPath(), **p)
            pybullet.loadURDF("plane.urdf", **p)
            self.body = pybullet.loadURDF(str(character.urdf_path), flags=pybullet.URDF_USE_INERTIA_FROM_FILE, **p)
            self.ghost = None
            if ghost:
                self.ghost = pybullet.loadURDF(str(character.urdf_path), flags=pybullet.URDF_USE_INERTIA_FROM_FILE, **p)
                for link in range(-1, character.num_joints - 1):
                    pybullet.changeVisualShape(self.ghost, link, rgbaColor=GHOST_RGBA, **p)
        self._ghost_parked = False

    def show(self, frame: Frame) -> None:
        """Pose both bodies: two PyBullet calls each (one to park a hidden ghost, none while it stays hidden)."""
        set_body_pose(self.client, self.body, frame.character)
        if self.ghost is None:
            return
        if frame.ghost is not None:
            set_body_pose(self.client, self.ghost, frame.ghost)
        elif not self._ghost_parked:  # far below the ground
            pybullet.resetBasePositionAndOrientation(self.ghost, [0, 0, -100], [0, 0, 0, 1],
                                                     physicsClientId=self.client)
        self._ghost_parked = frame.ghost is None

    @classmethod
    def direct(cls, character: Character, ghost: bool = True) -> Scene:
        """A Scene in a new DIRECT client, for TinyRenderer pictures."""
        with NativeOutputSilenced():
            client = pybullet.connect(pybullet.DIRECT)
        return cls(character, client, ghost)

    def close(self) -> None:
        try:
            with NativeOutputSilenced():
                pybullet.disconnect(self.client)
        except pybullet.error:  # already gone
            pass
