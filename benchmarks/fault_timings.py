"""How long a stopped run's processes outlive its trainer, and how long a hung worker holds a run.

    python benchmarks/fault_timings.py [TRIALS]     # default 3; Linux (reads /proc)

Each trial starts `charctl train gym CartPole-v1` with tiny settings in a new session, waits for its first
iteration, records every process below the trainer (with its start time, so a reused pid does not count), stops
the run and polls /proc every 10 ms until none of those processes is left (30 s at most, then it kills them).
Cases: Ray on its own (a driver that calls ray.init() itself, two actors at work) killed with -9; a `--ray` run
(its own local Ray instance) stopped by kill -9, SIGTERM and Ctrl-C (SIGINT to its process group, as a terminal
sends it); a `--workers 2` run killed with -9 or sent SIGTERM (the trainer alone, or its process group as a
scheduler does; the trainer finishes the iteration in flight); one worker of a `--workers 2` run stopped with
SIGSTOP under `--set worker_timeout=3` (there the time is until the trainer has exited and its workers are gone).
Prints a markdown table (docs/reliability.md).
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = ["--no-progress", "--samples", "10000000", "--set", "samples_per_iter=512", "--set", "critic_steps=5",
        "--set", "actor_steps=10", "--set", "eval_every=0"]


def start_time(pid: int) -> str | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def descendants(pid: int) -> dict[int, str]:
    found, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            for child in (int(c) for c in (task / "children").read_text().split()):
                if (started := start_time(child)) is not None:
                    found[child] = started
                    todo.append(child)
    return found


def left(tree: dict[int, str]) -> list[int]:
    return [pid for pid, started in tree.items() if start_time(pid) == started]


# a driver that starts Ray itself, as `ray.init()` does, with two actors at work: Ray's own behaviour, the reason
# charctl starts a run's Ray instance in a keeper process (charctl/awr/ray_keeper.py)
PLAIN_RAY = """
import sys, time
from pathlib import Path
import ray
ray.init(include_dashboard=False, log_to_driver=False)
Busy = ray.remote(num_cpus=1)(type("Busy", (), {"run": lambda self: time.sleep(1e9)}))
actors = [Busy.remote() for _ in range(2)]
refs = [a.run.remote() for a in actors]
time.sleep(5)
Path(sys.argv[1]).mkdir()
(Path(sys.argv[1]) / "progress.csv").touch()
ray.get(refs)
"""


def trial(extra: list[str], stop) -> tuple[int, float, int, int]:
    """(processes below the trainer, seconds until the last of them was gone, how many were still running after
    30 s, trainer exit code)."""
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        command = ["-c", PLAIN_RAY, str(run_dir)] if extra == ["plain"] else \
            ["-m", "charctl", "train", "gym", "CartPole-v1", "--out", str(run_dir), *TINY, *extra]
        process = subprocess.Popen([sys.executable, *command], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        while not (run_dir / "progress.csv").exists():
            if process.poll() is not None:
                raise SystemExit(f"the run ended early ({process.returncode}): {extra}")
            time.sleep(0.05)
        tree = descendants(process.pid)
        start = stop(process, tree)
        process.wait()
        while left(tree) and time.monotonic() - start < 30:
            time.sleep(0.01)
        seconds, stayed = time.monotonic() - start, left(tree)
        for pid in stayed:
            os.kill(pid, signal.SIGKILL)
        return len(tree), seconds, len(stayed), process.returncode


def send(sig, group: bool = False):
    def stop(process, tree) -> float:
        if sig == signal.SIGINT or group:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)
        return time.monotonic()
    return stop


def stop_a_worker(process, tree) -> float:
    os.kill(min(tree), signal.SIGSTOP)  # the first forked worker
    return time.monotonic()


CASES = [
    ("a plain ray.init() driver with 2 actors, kill -9", ["plain"], send(signal.SIGKILL)),
    ("--ray run, kill -9 of the driver", ["--ray", "--workers", "2"], send(signal.SIGKILL)),
    ("--ray run, SIGTERM to the driver", ["--ray", "--workers", "2"], send(signal.SIGTERM)),
    ("--ray run, Ctrl-C (SIGINT to its group)", ["--ray", "--workers", "2"], send(signal.SIGINT)),
    ("--workers 2, kill -9 of the trainer", ["--workers", "2"], send(signal.SIGKILL)),
    ("--workers 2, SIGTERM to the trainer", ["--workers", "2"], send(signal.SIGTERM)),
    ("--workers 2, SIGTERM to its group", ["--workers", "2"], send(signal.SIGTERM, group=True)),
    ("--workers 2, SIGSTOP of a worker, worker_timeout=3", ["--workers", "2", "--set", "worker_timeout=3"],
     stop_a_worker),
]


def main() -> None:
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print("| case | processes | all gone after (s), each trial | still running after 30 s | trainer exit |")
    print("|---|---|---|---|---|")
    for label, extra, stop in CASES:
        results = [trial(extra, stop) for _ in range(trials)]
        print(f"| {label} | {results[0][0]} | {', '.join(f'{r[1]:.2f}' for r in results)} | "
              f"{', '.join(str(r[2]) for r in results)} | {', '.join(sorted({str(r[3]) for r in results}))} |",
              flush=True)


if __name__ == "__main__":
    main()
