"""The character: its model (URDF + YAML), joint layout, poses, forward kinematics, and the recipe builder."""
