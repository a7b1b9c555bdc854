"""Settings: the dataclasses hold every default once, the YAML files only what differs, and every settings file
(AWR, environment, character, retarget map, character recipe) is type-checked with one-line errors."""

import dataclasses
import shutil
from pathlib import Path

import pytest
import yaml

from charctl.awr.checkpoint import load_checkpoint
from charctl.awr.config import AWRConfig, load_config
from charctl.character.model import load_character
from charctl.cli import main
from charctl.envs.config import EnvConfig, load_env_config
from charctl.motion import retarget
from charctl.util.errors import CharctlError
from charctl.util.paths import CHARACTERS_DIR, CONFIGS_DIR


def test_the_dataclasses_are_the_defaults():
    assert load_config() == AWRConfig()
    assert load_config("NoSuchTask-v0") == AWRConfig()
    assert load_env_config("no_such_character", "walk") == EnvConfig()
    assert not (CONFIGS_DIR / "awr" / "default.yaml").exists() and not (CONFIGS_DIR / "env" / "default.yaml").exists()


def _repeated_defaults(values: dict, defaults, where: str) -> list[str]:
    """Keys of `values` set to the value the dataclass instance `defaults` already has (nested sections too)."""
    out = []
    for key, value in values.items():
        default = getattr(defaults, key, None)
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            out += _repeated_defaults(value, default, f"{where}: {key}")
        elif hasattr(defaults, key) and value == default and isinstance(value, bool) == isinstance(default, bool):
            out.append(f"{where}: {key}: {value!r}")
    return out


def _sections(path):
    """A settings file's top level and each of its `clips:` sections."""
    data = yaml.safe_load(path.read_text()) or {}
    clips = data.pop("clips", None) or {}
    return [(str(path), data)] + [(f"{path}: clips: {name}", section or {}) for name, section in clips.items()]


def test_no_yaml_repeats_a_default():
    """Task files hold only what differs from the dataclasses. Presets (configs/awr/presets) go over a character's
    file, so they may set a default back; their own tests below say what each changes."""
    repeated = []
    for path in sorted((CONFIGS_DIR / "awr").rglob("*.yaml")):
        if path.parent.name == "presets":
            continue
        for where, values in _sections(path):
            repeated += _repeated_defaults(values, AWRConfig(), where)
    for path in sorted((CONFIGS_DIR / "env").glob("*.yaml")):
        for where, values in _sections(path):
            repeated += _repeated_defaults(values, EnvConfig(), where)
    assert not repeated, "settings equal to their dataclass default: " + "; ".join(repeated)


AUTHORS_LEARNER = {"actor_layers": [1024, 512], "critic_layers": [1024, 512], "actor_lr": 1.5e-6, "actor_steps": 200,
                   "critic_steps": 100, "samples_per_iter": 4096, "weight_clip": 50.0}
PRESETS = CONFIGS_DIR / "awr" / "presets"
POLICIES = Path(__file__).resolve().parents[1] / "policies"


def _changed(own, theirs) -> dict:
    own_values = dataclasses.asdict(own)
    return {key: value for key, value in dataclasses.asdict(theirs).items() if own_values[key] != value}


def test_the_dogs_learner_is_the_authors_imitation_preset():
    """The dog trains with the AWR authors' imitation learner; over the humanoid's own settings the preset changes
    only the learner, and keeps the rest (residual actions' zero-initialised output, discount, noise)."""
    preset = PRESETS / "authors_imitation.yaml"
    for motion in ("trot", "canter", "turn"):
        dog = load_config(character="dog", motion=motion)
        assert {key: getattr(dog, key) for key in AUTHORS_LEARNER} == AUTHORS_LEARNER
        assert load_config(character="dog", motion=motion, config_file=preset) == dog
    own = load_config(character="humanoid", motion="spinkick")
    theirs = load_config(character="humanoid", motion="spinkick", config_file=preset)
    assert _changed(own, theirs) == {key: value for key, value in AUTHORS_LEARNER.items()
                                     if key != "critic_steps"}  # the humanoid's is the authors' 100 already
    assert theirs.discount == 0.95 and theirs.action_std == 0.05 and theirs.actor_init_output_scale == 0.0


@pytest.mark.parametrize("motion, policy", [("trot", "earlier/dog_trot-5M/dog_trot.pt"), ("turn", "dog_turn.pt"),
                                            ("canter", "dog_canter.pt")])
def test_the_small_networks_preset_is_what_the_earlier_dog_policies_learnt_with(motion, policy):
    """--config configs/awr/presets/small_networks_imitation.yaml over the dog's file: the learner the shipped
    turn and canter and the trot shipped before record, and nothing else of the dog's own (the switches stay)."""
    own = load_config(character="dog", motion=motion)
    small = load_config(character="dog", motion=motion, config_file=PRESETS / "small_networks_imitation.yaml")
    changed = _changed(own, small)
    assert set(changed) == set(AUTHORS_LEARNER)
    recorded = load_checkpoint(POLICIES / policy)["config"]
    assert changed == {key: recorded[key] for key in AUTHORS_LEARNER}
    assert small.switches == own.switches and small.switches


def test_the_shipped_dog_trot_learnt_with_the_dogs_own_settings():
    """policies/dog_trot.pt is what `charctl train dog trot` trains today: every learner setting it records is the
    dog's (its run, seed 1, only turned test episodes off, as `charctl bench learn` runs do)."""
    own = dataclasses.asdict(load_config(character="dog", motion="trot"))
    recorded = load_checkpoint(POLICIES / "dog_trot.pt")["config"]
    differing = {key for key, value in recorded.items() if key in own and own[key] != value}
    assert differing <= {"eval_every", "eval_episodes", "keep_every", "samples", "num_workers", "seed"}, differing
    assert {key: recorded[key] for key in AUTHORS_LEARNER} == AUTHORS_LEARNER


def _character_copy(tmp_path, replace: tuple[str, str]):
    shutil.copy(CHARACTERS_DIR / "humanoid.urdf", tmp_path / "bad.urdf")
    text = (CHARACTERS_DIR / "humanoid.yaml").read_text().replace("urdf: humanoid.urdf", "urdf: bad.urdf")
    assert replace[0] in text
    (tmp_path / "bad.yaml").write_text(text.replace(*replace, 1))
    return tmp_path / "bad.yaml"


@pytest.mark.parametrize("replace, message", [
    (("kp: 1000.0", "kp: stiff"), r"bad.yaml: joint 'chest': kp: expected float, got 'stiff'"),
    (("reward_weight: 0.5", "reward_wieght: 0.5"), r"bad.yaml: joint 'chest': unknown key 'reward_wieght'"),
    (("end_effectors: [", "end_effectors: 3 #["), r"bad.yaml: end_effectors: expected a list of str, got 3"),
])
def test_character_yaml_is_typed(tmp_path, replace, message):
    path = _character_copy(tmp_path, replace)
    with pytest.raises(CharctlError, match=message) as info:
        load_character(str(path))
    assert "\n" not in str(info.value)


def test_retarget_map_is_typed(tmp_path):
    humanoid = load_character("humanoid")
    path = tmp_path / "m.yaml"
    for text, message in [("joints: {root: Hips}\nclamp_ball_joints: 3\n", "clamp_ball_joints: expected bool, got 3"),
                          ("joints: {root: Hips}\nsource: {scale: big}\n", "source: scale: expected float"),
                          ("joints: {root: Hips}\nroot_scale: half\n", "root_scale: expected float or one of auto"),
                          ("source: {up: y}\n", "missing key 'joints'")]:
        path.write_text(text)
        with pytest.raises(CharctlError) as info:
            retarget.load_map(path, humanoid)
        assert str(path) in str(info.value) and message in str(info.value) and "\n" not in str(info.value)


def test_character_recipe_is_typed(tmp_path, capsys):
    recipe = (CONFIGS_DIR / "characters" / "dog.yaml").read_text()
    base = CONFIGS_DIR / "characters"
    recipe = recipe.replace("../../../shared", str((base / "../../../shared").resolve()))
    for old, new, message in [("    mass: 3.5", "    mass: heavy", "splits[0]: mass: expected float, got 'heavy'"),
                              ("name: dog", "nmae: dog", "unknown key 'nmae'"),
                              ("shape: {kind: sphere, size: [0.20]", "shape: {kind: sphere, size: 0.2",
                               "split 'spine2': shape: size: expected a list of float, got 0.2")]:
        assert old in recipe
        path = tmp_path / "recipe.yaml"
        path.write_text(recipe.replace(old, new, 1))
        assert main(["import-character", str(path), "--out-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert str(path) in err and message in err and "\n" not in err, err
