"""AWR settings that run CartPole iterations in well under a second, for tests of the trainer's machinery
(resume, switches, warm starts, the mean of the actor's weights) rather than of how well it learns."""

QUICK_CARTPOLE = {"samples_per_iter": 512, "critic_steps": 20, "actor_steps": 100, "eval_every": 0,
                  "eval_episodes": 2, "num_workers": 0}
