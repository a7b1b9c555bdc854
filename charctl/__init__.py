"""charctl: motion-imitation character control on PyBullet with Advantage-Weighted Regression."""

__version__ = "0.1.0"
