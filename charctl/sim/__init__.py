"""The physics: a PyBullet world with one simulated character under stable PD, pose setting, rendering."""
