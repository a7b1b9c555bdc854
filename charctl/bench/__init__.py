"""Speed measurements: env and raw physics rates, worker processes, and pybullet's own DeepMimic port as a peer."""
