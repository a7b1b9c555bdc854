"""Bad input as a user would give it: every case is a one-line error (no traceback) with exit code 2, and leaves
nothing behind in its output folder. Cases run in-process through charctl.cli.main, so the whole suite is fast.

Inputs are built once per module from the shipped clips and a tiny CartPole run: checkpoints (empty, truncated,
junk, pickles, dicts missing entries), datasets, BVH and DeepMimic files, retarget maps and settings files.
"""

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from charctl.cli import main
from charctl.util.paths import CONFIGS_DIR, MOTIONS_DIR

TINY = ["--no-progress", "--workers", "0", "--samples", "256", "--set", "samples_per_iter=256", "--set",
        "critic_steps=2", "--set", "actor_steps=2", "--set", "eval_episodes=1"]
CMU_MAP = str(CONFIGS_DIR / "retarget" / "cmu_humanoid.yaml")


class Payload:
    """A pickled object whose unpickling would run code: weights_only loading must refuse it."""

    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def write_bvh_variants(folder: Path) -> None:
    text = (MOTIONS_DIR / "dog_trot.bvh").read_text()
    lines = text.splitlines()
    motion = next(i for i, line in enumerate(lines) if line.strip() == "MOTION")
    header, frames = lines[:motion + 3], lines[motion + 3:]
    variants = {
        "nan_row": header + frames[:5] + [frames[5].replace(frames[5].split()[3], "nan", 1)] + frames[6:],
        "inf_row": header + frames[:2] + [" ".join(["inf"] + frames[2].split()[1:])] + frames[3:],
        "word_row": header + frames[:1] + [" ".join(["abc"] + frames[1].split()[1:])] + frames[2:],
        "short_row": header + [" ".join(frames[0].split()[:-1])] + frames[1:],
        "long_row": header + [frames[0] + " 0.5"] + frames[1:],
        "truncated_frames": header + frames[:3],
        "truncated_hierarchy": lines[:motion // 2],
        "extra_frames": header + frames + frames[:2],
        "frame_time_zero": lines[:motion + 2] + ["Frame Time: 0"] + frames,
        "frame_time_negative": lines[:motion + 2] + ["Frame Time: -0.03"] + frames,
        "frame_time_huge": lines[:motion + 2] + ["Frame Time: 1000000"] + frames,
        "frame_time_word": lines[:motion + 2] + ["Frame Time: fast"] + frames,
        "frames_zero": lines[:motion + 1] + ["Frames: 0"] + lines[motion + 2:],
        "frames_word": lines[:motion + 1] + ["Frames: many"] + lines[motion + 2:],
        "no_motion": lines[:motion],
        "no_root": [line.replace("ROOT", "BONE") for line in lines],
        "bad_channel": [line.replace("Zrotation", "Wrotation", 1) for line in lines],
        "bad_offset": [line.replace("OFFSET 0 0 0", "OFFSET 0 zero 0", 1) for line in lines],
        "two_roots": lines[:motion] + lines[1:motion] + lines[motion:],
        "empty": [],
    }
    for name, content in variants.items():
        (folder / f"{name}.bvh").write_text("\n".join(content) + "\n")
    (folder / "binary.bvh").write_bytes(bytes(range(256)) * 4)
    deep = ["HIERARCHY", "ROOT j0", "{", "OFFSET 0 0 0", "CHANNELS 6 Xposition Yposition Zposition Zrotation "
            "Yrotation Xrotation"]
    for k in range(1, 3000):
        deep += [f"JOINT j{k}", "{", "OFFSET 0 0.1 0", "CHANNELS 3 Zrotation Yrotation Xrotation"]
    deep += ["}"] * 3000 + ["MOTION", "Frames: 1", "Frame Time: 0.033", " ".join(["0"] * (6 + 3 * 2999))]
    (folder / "deep.bvh").write_text("\n".join(deep) + "\n")


def write_deepmimic_variants(folder: Path) -> None:
    from charctl.character.model import load_character
    from charctl.motion.deepmimic import COLUMNS

    humanoid = load_character("humanoid")
    kinds = [humanoid.joints[humanoid.joint_index(n)].kind for n in humanoid.deepmimic_joints]
    row = [1 / 30, 0.0, 0.9, 0.0, 1.0, 0.0, 0.0, 0.0]
    for kind in kinds:
        row += [1.0, 0.0, 0.0, 0.0][:COLUMNS[kind]] if kind == "spherical" else [0.0] * COLUMNS[kind]
    good = [list(row) for _ in range(10)]

    def dump(name, data, raw=False):
        (folder / f"{name}.txt").write_text(data if raw else json.dumps(data))

    dump("negative_duration", {"Loop": "none", "Frames": [[-1 / 30] + r[1:] for r in good]})
    dump("zero_duration", {"Loop": "none", "Frames": [[0.0] + r[1:] for r in good]})
    dump("huge_duration", {"Loop": "none", "Frames": [[1e6] + r[1:] for r in good]})
    dump("uneven_duration", {"Loop": "none", "Frames": [[1 / 30 * (1 + i)] + r[1:] for i, r in enumerate(good)]})
    dump("narrow", {"Loop": "none", "Frames": [r[:-1] for r in good]})
    dump("wide", {"Loop": "none", "Frames": [r + [0.0] for r in good]})
    dump("nan", "{\"Loop\": \"none\", \"Frames\": [" + ", ".join(
        json.dumps(r) if i != 3 else json.dumps(r).replace("0.9", "NaN", 1) for i, r in enumerate(good)) + "]}",
        raw=True)
    dump("string_value", {"Loop": "none", "Frames": [r[:5] + ["x"] + r[6:] for r in good]})
    dump("row_not_list", {"Loop": "none", "Frames": [1, 2, 3]})
    dump("no_frames", {"Loop": "none"})
    dump("empty_frames", {"Loop": "none", "Frames": []})
    dump("bad_loop", {"Loop": "forever", "Frames": good})
    dump("not_json", "{Frames: [", raw=True)
    dump("a_list", [1, 2, 3])


def write_map_variants(folder: Path) -> None:
    text = Path(CMU_MAP).read_text()
    variants = {
        "root_scale_inf": text.replace("root_scale: auto", "root_scale: .inf"),
        "root_scale_nan": text.replace("root_scale: auto", "root_scale: .nan"),
        "root_scale_negative": text.replace("root_scale: auto", "root_scale: -1"),
        "root_scale_zero": text.replace("root_scale: auto", "root_scale: 0"),
        "root_scale_word": text.replace("root_scale: auto", "root_scale: big"),
        "scale_zero": text.replace("scale: 0.05644", "scale: 0"),
        "scale_inf": text.replace("scale: 0.05644", "scale: .inf"),
        "up_w": text.replace("up: y ", "up: w "),
        "forward_same_as_up": text.replace("forward: z", "forward: y"),
        "unknown_key": text + "\nspeed: 2\n",
        "joints_list": text.split("joints:")[0] + "joints: [a, b]\n",
        "unknown_target_joint": text + "  tail: [Hips]\n",
        "no_joints": text.split("joints:")[0],
        "not_yaml": "joints: [unclosed\n",
        "top_list": "- a\n- b\n",
        "clamp_word": text.replace("clamp_ball_joints: false", "clamp_ball_joints: sometimes"),
    }
    for name, content in variants.items():
        (folder / f"{name}.yaml").write_text(content)


def write_config_variants(folder: Path) -> None:
    variants = {
        "unknown_key": "learning_rate: 0.1\n",
        "wrong_type": "actor_lr: fast\n",
        "out_of_range": "discount: 1.5\n",
        "negative_batch": "actor_batch_size: -4\n",
        "nan": "temperature: .nan\n",
        "inf": "critic_lr: .inf\n",
        "list_for_number": "samples: [1, 2]\n",
        "layers_zero": "actor_layers: [64, 0]\n",
        "layers_word": "critic_layers: big\n",
        "bool_for_int": "samples_per_iter: true\n",
        "literal": "returns: bootstrap\n",
        "not_yaml": "actor_lr: [0.1\n",
        "top_list": "- actor_lr: 0.1\n",
        "top_string": "just words\n",
    }
    for name, content in variants.items():
        (folder / f"{name}.yaml").write_text(content)


def write_checkpoint_variants(folder: Path, good: Path) -> None:
    state = torch.load(good, weights_only=True)
    (folder / "empty.pt").write_bytes(b"")
    data = good.read_bytes()
    (folder / "truncated.pt").write_bytes(data[:len(data) // 2])
    (folder / "junk.pt").write_bytes(b"not a checkpoint at all\n" * 10)
    (folder / "text.pt").write_text("format: charctl-awr-1\n")
    torch.save([1, 2, 3], folder / "list.pt")
    torch.save({"weights": torch.zeros(3)}, folder / "no_format.pt")
    torch.save({**state, "format": "charctl-awr-0"}, folder / "old_format.pt")
    for key in ("config", "agent", "env_id", "action", "observation_size"):
        torch.save({k: v for k, v in state.items() if k != key}, folder / f"no_{key}.pt")
    torch.save({**state, "config": {"samples": -1}}, folder / "bad_config.pt")
    torch.save({**state, "config": "fast"}, folder / "config_string.pt")
    torch.save({**state, "config": {**state["config"], "mystery": 1}}, folder / "config_unknown_key.pt")
    torch.save({**state, "env_id": "Nowhere-v9"}, folder / "unknown_env.pt")
    torch.save({**state, "observation_size": 99}, folder / "wrong_observation_size.pt")
    torch.save({**state, "agent": {**state["agent"], "actor": {}}}, folder / "empty_actor.pt")
    with open(folder / "pickle.pt", "wb") as f:
        pickle.dump({"format": "charctl-awr-1", "payload": Payload()}, f)
    torch.save({"format": "charctl-awr-1", "payload": Payload()}, folder / "torch_pickle.pt")
    torch.save({"format": "charctl-awr-1", "payload": Payload()}, folder / "legacy_torch_pickle.pt",
               _use_new_zipfile_serialization=False)
    torch.save(state, folder / "legacy.pt", _use_new_zipfile_serialization=False)  # torch's format before 1.6
    legacy = (folder / "legacy.pt").read_bytes()
    (folder / "legacy_truncated.pt").write_bytes(legacy[:len(legacy) // 2])
    (folder / "a_directory.pt").mkdir()
    # a run folder whose -last.pt is a pickle, for --resume
    (folder / "pickled_run").mkdir()
    shutil.copy(folder / "torch_pickle.pt", folder / "pickled_run" / "CartPole-v1-last.pt")


def write_dataset_variants(folder: Path) -> None:
    n = 20
    good = {"observations": np.zeros((n, 4), np.float32), "actions": np.zeros(n, np.int64),
            "rewards": np.ones(n, np.float32), "terminated": np.eye(1, n, n - 1, dtype=bool)[0],
            "truncated": np.zeros(n, bool), "next_observations": np.zeros((n, 4), np.float32)}

    def save(name, **changes):
        arrays = {**good, **changes}
        np.savez(folder / f"{name}.npz", **{k: v for k, v in arrays.items() if v is not None})

    save("missing_rewards", rewards=None)
    save("missing_observations", observations=None)
    save("wrong_obs_width", observations=np.zeros((n, 5), np.float32))
    save("wrong_obs_rows", observations=np.zeros((n - 1, 4), np.float32))
    save("float_actions", actions=np.zeros(n, np.float32) + 0.5)
    save("action_out_of_range", actions=np.full(n, 7, np.int64))
    save("nan_observation", observations=np.where(np.arange(n)[:, None] == 3, np.nan, 0).astype(np.float32))
    save("inf_reward", rewards=np.where(np.arange(n) == 5, np.inf, 1).astype(np.float32))
    save("int_terminated", terminated=np.zeros(n, np.int64))
    save("unended", terminated=np.zeros(n, bool))
    save("empty", **{k: v[:0] for k, v in good.items()})
    (folder / "junk.npz").write_bytes(b"PK not really a zip")
    (folder / "text.npz").write_text("observations\n")
    (folder / "npy.npz").write_bytes(b"")
    np.save(folder / "plain.npy", np.zeros(3))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    run = folder / "good"
    assert main(["train", "gym", "CartPole-v1", "--out", str(run), *TINY]) == 0
    write_checkpoint_variants(folder, run / "CartPole-v1.pt")
    write_bvh_variants(folder)
    write_deepmimic_variants(folder)
    write_map_variants(folder)
    write_config_variants(folder)
    write_dataset_variants(folder)
    (folder / "not_a_run").mkdir()
    (folder / "not_a_run" / "notes.txt").write_text("x")
    (folder / "run_without_evals").mkdir()
    (folder / "run_without_evals" / "progress.csv").write_text("iteration,samples,test_return\n0,10,\n")
    (folder / "run_without_evals" / "config.yaml").write_text("env_id: CartPole-v1\n")
    (folder / "a_file").write_text("x")
    return folder


def case(name: str, expected: str, *argv: str):
    return pytest.param(list(argv), expected, id=name)


GOOD = "{in}/good/CartPole-v1.pt"
CHECKPOINTS = ["empty", "truncated", "junk", "text", "list", "no_format", "old_format", "no_config", "no_agent",
               "no_env_id", "no_action", "no_observation_size", "bad_config", "config_string", "config_unknown_key",
               "unknown_env", "wrong_observation_size", "empty_actor", "pickle", "torch_pickle", "legacy_torch_pickle",
               "legacy_truncated", "a_directory"]
BVHS = ["nan_row", "inf_row", "word_row", "short_row", "long_row", "truncated_frames", "truncated_hierarchy",
        "extra_frames", "frame_time_zero", "frame_time_negative", "frame_time_huge", "frame_time_word",
        "frames_zero", "frames_word", "no_motion", "no_root", "bad_channel", "bad_offset", "two_roots", "empty",
        "binary", "deep"]
DEEPMIMIC = ["negative_duration", "zero_duration", "huge_duration", "uneven_duration", "narrow", "wide", "nan",
             "string_value", "row_not_list", "no_frames", "empty_frames", "bad_loop", "not_json", "a_list"]
MAPS = ["root_scale_inf", "root_scale_nan", "root_scale_negative", "root_scale_zero", "root_scale_word",
        "scale_zero", "scale_inf", "up_w", "forward_same_as_up", "unknown_key", "joints_list",
        "unknown_target_joint", "no_joints", "not_yaml", "top_list", "clamp_word"]
CONFIGS = ["unknown_key", "wrong_type", "out_of_range", "negative_batch", "nan", "inf", "list_for_number",
           "layers_zero", "layers_word", "bool_for_int", "literal", "not_yaml", "top_list", "top_string"]
DATASETS = ["missing_rewards", "missing_observations", "wrong_obs_width", "wrong_obs_rows", "float_actions",
            "action_out_of_range", "nan_observation", "inf_reward", "int_terminated", "unended", "empty", "junk",
            "text", "npy"]
# --set values outside their ranges (or of the wrong kind), one per setting
SETS = ["samples=0", "seed=-1", "num_workers=-1", "torch_threads=-1", "eval_every=-1", "eval_episodes=-2",
        "worker_timeout=0", "samples_per_iter=0", "buffer_size=0", "discount=2", "discount=1", "discount=-0.1",
        "td_lambda=1.5", "temperature=0", "weight_clip=0", "actor_layers=[]", "actor_layers=[-1]",
        "actor_lr=-1", "actor_momentum=1", "actor_batch_size=0", "actor_steps=-1", "actor_init_output_scale=-1",
        "action_std=0", "action_std=-0.2", "exploration_rate=0", "exploration_rate=1.5",
        "action_bound_weight=-1", "action_l2_weight=-1", "actor_max_grad_norm=0", "critic_layers=[0]",
        "critic_lr=-0.1", "critic_momentum=2", "critic_batch_size=0", "critic_steps=-5", "value_scale=0",
        "normalizer_samples=-1", "normalizer_std_floor=0", "obs_clip=0", "actor_lr=.nan", "critic_lr=.inf",
        "returns=bootstrap", "device=7", "samples=1e6", "seed=1.5", "checkpoint_buffer=maybe", "nokey=1",
        "keep_every=-1", "keep_every=0.5", "init_actor_output=reset",
        "=1", "samples", "actor_lr=[0.1", "env.time_limit=1"]
ENV_SETS = ["env.time_limit=0", "env.time_limit=-5", "env.sim.control_hz=0", "env.sim.physics_hz=10",
            "env.sim.solver_iterations=0", "env.sim.ground_friction=-1", "env.pose_termination_distance=-1",
            "env.reference_ahead=[-1]", "env.reference_ahead=[1, -3]", "env.reward.pose_weight=-1",
            "env.reward.root_scale=-2", "env.action_mode=relative", "env.sim.gravity=.nan", "env.nokey=1",
            "env.sim=fast", "env.observe_phase=sometimes"]

CLI_CASES = [
    # train
    case("train-no-args", "required", "train"),
    case("train-unknown-character", "characters:", "train", "robot", "walk", "--out", "{out}/run"),
    case("train-unknown-clip", "clips:", "train", "dog", "moonwalk", "--out", "{out}/run"),
    case("train-unknown-gym-env", "registered", "train", "gym", "Hoper-v5", "--out", "{out}/run"),
    case("train-samples-word", "invalid int", "train", "gym", "CartPole-v1", "--samples", "many"),
    case("train-samples-zero", "--samples", "train", "gym", "CartPole-v1", "--samples", "0", "--out", "{out}/run"),
    case("train-samples-negative", "--samples", "train", "gym", "CartPole-v1", "--samples", "-5", "--out",
         "{out}/run"),
    case("train-workers-negative", "--workers", "train", "gym", "CartPole-v1", "--workers", "-1", "--out",
         "{out}/run"),
    case("train-seed-negative", "--seed", "train", "gym", "CartPole-v1", "--seed", "-1", "--out", "{out}/run"),
    case("train-seed-word", "invalid int", "train", "gym", "CartPole-v1", "--seed", "one"),
    case("train-config-missing", "no such file", "train", "gym", "CartPole-v1", "--config", "{in}/nothing.yaml",
         "--out", "{out}/run"),
    case("train-dataset-missing", "no such dataset", "train", "gym", "CartPole-v1", "--dataset",
         "{in}/nothing.npz", "--out", "{out}/run", *TINY),
    case("train-env-set-on-gym", "imitation tasks only", "train", "gym", "CartPole-v1", "--set",
         "env.time_limit=3", "--out", "{out}/run"),
    case("train-out-is-a-file", "is a file", "train", "gym", "CartPole-v1", "--out", "{in}/a_file", *TINY),
    case("train-out-under-a-file", "a_file", "train", "gym", "CartPole-v1", "--out", "{in}/a_file/run", *TINY),
    case("train-resume-nothing", "no checkpoint to resume", "train", "gym", "CartPole-v1", "--resume", "--out",
         "{out}/run"),
    case("train-resume-other-task", "holds a run of CartPole-v1", "train", "gym", "Acrobot-v1", "--resume",
         "--out", "{in}/good"),
    case("train-resume-pickle", "not a readable charctl checkpoint", "train", "gym", "CartPole-v1", "--resume",
         "--out", "{in}/pickled_run"),
    case("train-again-without-resume", "already exists", "train", "gym", "CartPole-v1", "--out", "{in}/good",
         *TINY),
    case("train-resume-new-seed", "keeps its seed", "train", "gym", "CartPole-v1", "--resume", "--seed", "9",
         "--out", "{in}/good"),
    case("train-resume-new-layers", "keeps its actor_layers", "train", "gym", "CartPole-v1", "--resume", "--set",
         "actor_layers=[8]", "--out", "{in}/good"),
    case("train-unknown-flag", "unrecognized arguments", "train", "gym", "CartPole-v1", "--no-such-flag"),
    # eval
    case("eval-nothing", "give a CHECKPOINT", "eval"),
    case("eval-missing", "no such checkpoint", "eval", "{in}/nothing.pt"),
    case("eval-episodes-zero", "--episodes", "eval", GOOD, "--episodes", "0"),
    case("eval-episodes-word", "invalid int", "eval", GOOD, "--episodes", "ten"),
    case("eval-seed-negative", "--seed: must be at least 0, not -3", "eval", GOOD, "--seed", "-3"),
    case("eval-reference-training-setting", "--reference takes env settings only", "eval", "--reference", "dog",
         "trot", "--set", "actor_lr=1"),
    case("eval-reference-unknown-controller", "controller", "eval", "--reference", "dog", "trot", "--set",
         "env.sim.controller=servo"),
    case("eval-seed-word", "invalid seed value", "eval", GOOD, "--seed", "one"),
    case("play-seed-negative", "--seed: must be at least 0", "play", GOOD, "--record", "{out}/x.mp4", "--seed", "-1"),
    case("collect-seed-negative", "--seed: must be at least 0", "collect", GOOD, "--samples", "10", "--seed", "-1",
         "--out", "{out}/d.npz"),
    case("export-seed-negative", "--seed: must be at least 0", "export", GOOD, "--out", "{out}/x.bvh", "--seed", "-1"),
    case("eval-both", "one of them", "eval", GOOD, "--reference", "dog", "trot"),
    case("eval-baseline-gym", "needs an imitation policy", "eval", GOOD, "--baseline"),
    case("eval-run-folder-without-policy", "a run directory", "eval", "{in}/not_a_run"),
    case("eval-reference-unknown-character", "characters:", "eval", "--reference", "robot", "walk"),
    case("eval-reference-unknown-clip", "clips:", "eval", "--reference", "dog", "moonwalk"),
    # play
    case("play-missing", "no such checkpoint", "play", "{in}/nothing.pt", "--record", "{out}/x.mp4"),
    case("play-avi", "videos are .mp4 or .gif", "play", GOOD, "--record", "{out}/x.avi"),
    case("play-width-zero", "--width 0", "play", GOOD, "--record", "{out}/x.mp4", "--width", "0"),
    case("play-height-negative", "--height -5", "play", GOOD, "--record", "{out}/x.mp4", "--height", "-5"),
    case("play-width-huge", "--width 100000", "play", GOOD, "--record", "{out}/x.mp4", "--width", "100000"),
    case("play-seconds-zero", "--seconds", "play", GOOD, "--record", "{out}/x.mp4", "--seconds", "0"),
    case("play-seconds-nan", "--seconds", "play", GOOD, "--record", "{out}/x.mp4", "--seconds", "nan"),
    case("play-episodes-zero", "--episodes", "play", GOOD, "--record", "{out}/x.mp4", "--episodes", "0"),
    case("play-screenshot-without-gui", "--screenshot goes with --gui", "play", GOOD, "--record", "{out}/x.mp4",
         "--screenshot", "{out}/x.png"),
    # collect
    case("collect-samples-zero", "--samples must be at least 1", "collect", GOOD, "--samples", "0", "--out",
         "{out}/d.npz"),
    case("collect-noise-negative", "--noise must be >= 0", "collect", GOOD, "--samples", "10", "--noise", "-1",
         "--out", "{out}/d.npz"),
    case("collect-out-txt", "datasets are .npz", "collect", GOOD, "--samples", "10", "--out", "{out}/d.txt"),
    case("collect-no-out", "required", "collect", GOOD, "--samples", "10"),
    case("collect-missing", "no such checkpoint", "collect", "{in}/nothing.pt", "--samples", "10", "--out",
         "{out}/d.npz"),
    case("collect-workers-negative", "--workers", "collect", GOOD, "--samples", "10", "--workers", "-1", "--out",
         "{out}/d.npz"),
    # retarget
    case("retarget-bad-name", "--name", "retarget", "{in}/nan_row.bvh", "--character", "dog", "--name", "a b",
         "--out-dir", "{out}"),
    case("retarget-missing-source", "source file not found", "retarget", "{in}/nothing.bvh", "--character", "dog",
         "--name", "x", "--out-dir", "{out}"),
    case("retarget-unknown-suffix", "unknown source type", "retarget", "{in}/a_file", "--character", "dog",
         "--name", "x", "--out-dir", "{out}"),
    case("retarget-bvh-without-map", "needs --map", "retarget", str(MOTIONS_DIR / "dog_trot.bvh"), "--character",
         "dog", "--name", "x", "--out-dir", "{out}"),
    case("retarget-fps-zero", "--fps", "retarget", str(MOTIONS_DIR / "humanoid_spinkick.bvh"), "--character",
         "humanoid",
         "--map", CMU_MAP, "--name", "x", "--fps", "0", "--out-dir", "{out}"),
    case("retarget-fps-huge", "--fps", "retarget", str(MOTIONS_DIR / "dog_trot.bvh"), "--character", "dog",
         "--map", CMU_MAP, "--name", "x", "--fps", "1e9", "--out-dir", "{out}"),
    case("retarget-unknown-character", "characters:", "retarget", str(MOTIONS_DIR / "dog_trot.bvh"),
         "--character", "robot", "--map", CMU_MAP, "--name", "x", "--out-dir", "{out}"),
    case("retarget-missing-map", "not found", "retarget", str(MOTIONS_DIR / "dog_trot.bvh"), "--character",
         "humanoid", "--map", "{in}/nothing.yaml", "--name", "x", "--out-dir", "{out}"),
    case("retarget-bad-loop", "invalid choice", "retarget", "{in}/nan_row.bvh", "--character", "dog", "--name",
         "x", "--loop", "forever"),
    # view
    case("view-unknown-character", "characters:", "view", "robot", "walk", "--out", "{out}/v.gif"),
    case("view-unknown-clip", "clips:", "view", "dog", "moonwalk", "--out", "{out}/v.gif"),
    case("view-missing-bvh", "not found", "view", "dog", "{in}/nothing.bvh", "--out", "{out}/v.gif"),
    case("view-bad-suffix", "--out", "view", "dog", "trot", "--out", "{out}/v.avi"),
    case("view-width-zero", "--width 0", "view", "dog", "trot", "--out", "{out}/v.png", "--width", "0"),
    case("view-height-huge", "--height", "view", "dog", "trot", "--out", "{out}/v.png", "--height", "99999"),
    case("view-fps-zero", "--fps", "view", "dog", "trot", "--out", "{out}/v.gif", "--fps", "0"),
    case("view-seconds-negative", "--seconds", "view", "dog", "trot", "--out", "{out}/v.gif", "--seconds", "-1"),
    case("view-at-negative", "--at", "view", "dog", "trot", "--out", "{out}/v.gif", "--at", "-2"),
    case("view-humanoid-clip-on-dog", "", "view", "dog", str(MOTIONS_DIR / "humanoid_spinkick.bvh"), "--out",
         "{out}/v.png"),
    # plot
    case("plot-not-a-run", "not a run directory", "plot", "{in}/not_a_run", "--out", "{out}/p.png"),
    case("plot-missing-run", "not a run directory", "plot", "{in}/nothing", "--out", "{out}/p.png"),
    case("plot-no-evaluations", "no evaluated iterations", "plot", "{in}/run_without_evals", "--out",
         "{out}/p.png"),
    case("plot-bad-suffix", "pictures are", "plot", "{in}/good", "--out", "{out}/p.txt"),
    case("plot-no-out", "required", "plot", "{in}/good"),
    # bench
    case("bench-unknown-what", "invalid choice", "bench", "speed", "dog", "trot"),
    case("bench-unknown-character", "characters:", "bench", "env", "robot", "walk", "--seconds", "0.1"),
    case("bench-env-unknown-controller", "controller", "bench", "env", "dog", "trot", "--seconds", "0.1", "--set",
         "env.sim.controller=servo"),
    case("bench-learn-no-name", "--name", "bench", "learn", "dog", "trot", "--out", "{out}"),
    case("bench-learn-bad-name", "plain folder name", "bench", "learn", "dog", "trot", "--name", "../x", "--out",
         "{out}"),
    case("bench-learn-seeds-zero", "--seeds", "bench", "learn", "dog", "trot", "--name", "a", "--seeds", "0",
         "--out", "{out}"),
    case("bench-learn-seed-negative", "--seed", "bench", "learn", "dog", "trot", "--name", "a", "--seed", "-1",
         "--out", "{out}"),
    case("bench-learn-samples-zero", "--samples", "bench", "learn", "dog", "trot", "--name", "a", "--samples",
         "0", "--out", "{out}"),
    case("bench-learn-unknown-clip", "clips:", "bench", "learn", "dog", "moonwalk", "--name", "a", "--out",
         "{out}"),
    case("bench-learn-switch-off-mark", "evaluation mark", "bench", "learn", "dog", "trot", "--name", "a",
         "--samples", "900", "--every", "300", "--from", "400", "env.clip_speed=1", "--out", "{out}"),
    case("bench-learn-switch-not-a-mark", "sample count", "bench", "learn", "dog", "trot", "--name", "a",
         "--from", "soon", "env.clip_speed=1", "--out", "{out}"),
    case("bench-learn-switch-bad-value", "clip_speed", "bench", "learn", "dog", "trot", "--name", "a",
         "--samples", "900", "--every", "300", "--from", "300", "env.clip_speed=-1", "--out", "{out}"),
    case("bench-learn-switch-network", "actor_layers", "bench", "learn", "dog", "trot", "--name", "a",
         "--samples", "900", "--every", "300", "--from", "300", "actor_layers=[8]", "--out", "{out}"),
    case("bench-learn-fork-no-parent", "no variant 'default'", "bench", "learn", "dog", "trot", "--name", "a",
         "--samples", "900", "--every", "300", "--fork", "default", "300", "--out", "{out}"),
    case("bench-learn-fork-itself", "cannot fork itself", "bench", "learn", "dog", "trot", "--name", "a",
         "--samples", "900", "--every", "300", "--fork", "a", "300", "--out", "{out}"),
    case("bench-learn-fork-off-mark", "forks begin at an evaluation mark", "bench", "learn", "dog", "trot",
         "--name", "a", "--samples", "900", "--every", "300", "--fork", "default", "400", "--out", "{out}"),
    case("bench-learn-fork-not-a-mark", "sample count", "bench", "learn", "dog", "trot", "--name", "a",
         "--fork", "default", "soon", "--out", "{out}"),
    # import-character
    case("import-character-missing", "recipe file not found", "import-character", "{in}/nothing.yaml",
         "--out-dir", "{out}"),
    case("import-character-not-yaml", "", "import-character", "{in}/not_yaml.yaml", "--out-dir", "{out}"),
    # top level
    case("unknown-command", "invalid choice", "fly"),
]

FILE_CASES = (
    [case(f"eval-checkpoint-{c}", "", "eval", f"{{in}}/{c}.pt") for c in CHECKPOINTS]
    + [case(f"play-checkpoint-{c}", "", "play", f"{{in}}/{c}.pt", "--record", "{out}/x.gif")
       for c in CHECKPOINTS[::2]]
    + [case(f"collect-checkpoint-{c}", "", "collect", f"{{in}}/{c}.pt", "--samples", "10", "--out",
            "{out}/d.npz") for c in CHECKPOINTS[1::2]]
    + [case(f"view-bvh-{b}", "", "view", "dog", f"{{in}}/{b}.bvh", "--out", "{out}/v.png") for b in BVHS]
    + [case(f"retarget-bvh-{b}", "", "retarget", f"{{in}}/{b}.bvh", "--character", "humanoid", "--map", CMU_MAP,
            "--name", "x", "--out-dir", "{out}") for b in BVHS]
    + [case(f"retarget-deepmimic-{d}", "", "retarget", f"{{in}}/{d}.txt", "--character", "humanoid", "--name",
            "x", "--out-dir", "{out}") for d in DEEPMIMIC]
    + [case(f"retarget-map-{m}", "", "retarget", str(MOTIONS_DIR / "humanoid_spinkick.bvh"), "--character",
            "humanoid", "--map", f"{{in}}/{m}.yaml", "--name", "x", "--out-dir", "{out}") for m in MAPS]
    + [case(f"train-config-{c}", "", "train", "gym", "CartPole-v1", "--config", f"{{in}}/{c}.yaml", "--out",
            "{out}/run") for c in CONFIGS]
    + [case(f"train-dataset-{d}", "", "train", "gym", "CartPole-v1", "--dataset", f"{{in}}/{d}.npz", "--out",
            "{out}/run", *TINY) for d in DATASETS]
    + [case(f"train-set-{s}", "", "train", "gym", "CartPole-v1", "--set", s, "--out", "{out}/run") for s in SETS]
    + [case(f"train-set-{s}", "", "train", "dog", "trot", "--set", s, "--out", "{out}/run") for s in ENV_SETS]
)

EXPECTED = {  # what the line must say for some file cases (others: any one-line error)
    "view-bvh-nan_row": "nan_row.bvh:",
    "retarget-map-root_scale_inf": "root_scale",
    "retarget-bvh-deep": "more than 100 deep",
    "retarget-bvh-frame_time_huge": "Frame Time",
    "retarget-deepmimic-negative_duration": "frame durations must be in",
    # why a checkpoint is unreadable, in charctl's words (torch's run to a paragraph and advise an unsafe load)
    "eval-checkpoint-junk": "not a file written by torch.save",
    "eval-checkpoint-pickle": "not a file written by torch.save",
    "eval-checkpoint-truncated": "a damaged or cut-off torch archive",
    "eval-checkpoint-torch_pickle": "none of its code ran",
    "eval-checkpoint-legacy_torch_pickle": "the legacy format (before torch 1.6); it holds Python objects",
    "eval-checkpoint-legacy_truncated": "a damaged or cut-off torch file in the legacy format",
}


@pytest.mark.parametrize("argv, expected", CLI_CASES + FILE_CASES)
def test_bad_input_is_one_line_and_exit_2(argv, expected, inputs, tmp_path, capsys, monkeypatch, request):
    monkeypatch.chdir(tmp_path)  # a stray relative write would show up here

    def no_training(self):
        raise AssertionError("this bad input started training")

    monkeypatch.setattr("charctl.awr.trainer._Run.iterate", no_training)
    out = tmp_path / "out"
    argv = [a.replace("{in}", str(inputs)).replace("{out}", str(out)) for a in argv]
    before = sorted(p.name for p in inputs.rglob("*"))
    try:
        code = main(argv)
    except SystemExit as exit_info:  # argparse's own errors
        code = exit_info.code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    expected = EXPECTED.get(request.node.callspec.id, expected)
    assert expected in lines[0], lines[0]
    assert "weights_only" not in lines[0]  # torch's advice to load a file unsafely is not ours to pass on
    assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["out"])
    assert sorted(p.name for p in inputs.rglob("*")) == before  # no temporaries beside the inputs
    assert not Path("PWNED").exists()


def test_a_nan_bvh_row_is_reported_with_its_line_number(inputs, capsys):
    assert main(["view", "dog", str(inputs / "nan_row.bvh"), "--out", str(inputs / "x.png")]) == 2
    err = capsys.readouterr().err
    lines = (inputs / "nan_row.bvh").read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if " nan" in f" {line}") + 1
    assert f"nan_row.bvh:{number}: frame 5" in err


def test_an_unreadable_checkpoint_is_reported_in_the_systems_words(inputs, monkeypatch, capsys):
    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(inputs / "good" / "CartPole-v1.pt"))

    monkeypatch.setattr(torch, "load", refused)  # as root every file reads, so the refusal is staged
    assert main(["eval", str(inputs / "good" / "CartPole-v1.pt")]) == 2
    assert capsys.readouterr().err.strip().endswith("not a readable charctl checkpoint (Permission denied)")


def test_the_suite_tries_at_least_150_bad_inputs():
    assert len(CLI_CASES) + len(FILE_CASES) >= 150
