"""Gymnasium registration of the imitation tasks (importing this module registers them).

    gymnasium.make("charctl/Imitate-v0", character="dog", motion="trot")
    gymnasium.make("charctl.envs:charctl/DogTrot-v0")
"""

from gymnasium.envs.registration import register, registry

TASKS = {
    "HumanoidCartwheel": ("humanoid", "cartwheel"),
    "HumanoidSpinkick": ("humanoid", "spinkick"),
    "DogCanter": ("dog", "canter"),
    "DogTrot": ("dog", "trot"),
    "DogTurn": ("dog", "turn"),
}
ENTRY_POINT = "charctl.envs.imitation:ImitationEnv"
IMITATION_ENV_ID = "charctl/Imitate-v0"  # any character and clip, as keyword arguments (what checkpoints record)

if IMITATION_ENV_ID not in registry:
    register(id=IMITATION_ENV_ID, entry_point=ENTRY_POINT)
    for _name, (_character, _motion) in TASKS.items():
        register(id=f"charctl/{_name}-v0", entry_point=ENTRY_POINT, kwargs={"character": _character, "motion": _motion})
