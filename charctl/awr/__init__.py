"""Advantage-Weighted Regression (Peng et al. 2019), as the authors' reference code runs it, for any gymnasium
env with Box or Discrete actions: replay buffer, TD(lambda), actor/critic, update, rollouts, trainer, checkpoints.
Overview: docs/awr.md.
"""
