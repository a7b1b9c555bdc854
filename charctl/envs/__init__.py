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

if "charctl/Imitate-v0" not in registry:
    register(id="charctl/Imitate-v0", entry_point=ENTRY_POINT)
    for _name, (_character, _motion) in TASKS.items():
        register(id=f"charctl/{_name}-v0", entry_point=ENTRY_POINT, kwargs={"character": _character, "motion": _motion})
