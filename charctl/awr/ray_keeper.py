"""The keeper of a run's own local Ray instance: `python -m charctl.awr.ray_keeper`, started by the driver.

Ray's head processes die with the process that started them (PR_SET_PDEATHSIG), but the agents and workers the
raylet starts do not always: after a kill -9 of the driver, Ray 2.60's dashboard and runtime-env agents see the
raylet go, then wait on the dead GCS to report it, and stay (benchmarks/fault_timings.py). So the driver does not
start Ray itself: it starts this keeper in a new session, the keeper starts Ray (every Ray process is then in the
keeper's session) and prints the address, and the driver connects to it. The keeper holds the read end of a pipe
whose only writer is the driver: when the driver ends, however it ended, the read returns and the keeper SIGKILLs
every process of its session, then exits.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

END_SECONDS = 10.0  # the raylet may start a worker while the session is being killed: sweep until it is empty


def session_members(sid: int) -> list[int]:
    """Live processes of session `sid` (zombies are dead, only waiting to be reaped)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # gone meanwhile
            continue
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def end_session() -> None:
    """SIGKILL every other process of this session (all of them started by the Ray instance), then exit.
    os._exit: Ray's exit hooks would wait on the GCS just killed."""
    me = os.getpid()
    if not Path("/proc/self/stat").exists():  # no /proc (not Linux): the Ray head shares our process group
        os.killpg(os.getpgid(0), signal.SIGKILL)
    deadline = time.monotonic() + END_SECONDS
    while time.monotonic() < deadline:
        others = [pid for pid in session_members(os.getsid(0)) if pid != me]
        if not others:
            break
        for pid in others:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    os._exit(0)


def main() -> None:
    import ray

    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    # a kill aimed at the keeper itself also takes its Ray instance with it; set after ray.init, which installs
    # handlers of its own
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, lambda *_: end_session())
    print(ray.get_runtime_context().gcs_address, flush=True)
    sys.stdin.buffer.read()  # returns at end of file: the driver closed its end or is gone
    end_session()


if __name__ == "__main__":
    main()
