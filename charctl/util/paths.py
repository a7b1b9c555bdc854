"""Where the project's data lives: characters/, motions/, configs/ beside the package.

CHARCTL_DATA overrides the root (a directory holding those three folders).
"""

import os
from pathlib import Path

DATA_ROOT = Path(os.environ.get("CHARCTL_DATA", Path(__file__).resolve().parents[2]))
CHARACTERS_DIR = DATA_ROOT / "characters"
MOTIONS_DIR = DATA_ROOT / "motions"
CONFIGS_DIR = DATA_ROOT / "configs"
