"""One build at a time per work folder, and nothing left running when a build ends or is killed.

`build_session` wraps a build (the `asif build-anchors` command and the flow alike):

- it locks ``<work_dir>/build.lock`` (`WorkDirLock`): a second build of the same folder is
  refused while the first runs, and a build that was killed (its owner is still written in
  the lock, which a clean exit empties) is reported to the next one, which resumes its work;
- a watchdog process ends the processes the build started (this process group when the build
  leads it, as a command does; the pids it is given, such as Prefect's temporary server) if
  the build dies without leaving the session, even by SIGKILL, which no `finally` survives;
- on the way out it shuts down the Ray session the build started (a cluster it joined keeps
  running).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from asif.errors import AsifError

LOCK_NAME = "build.lock"
"""Not *.json: img2dataset reads every *.json of the folder as shard stats."""

_WATCHDOG = """
import os, signal, sys, time
group, pids = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
if sys.stdin.buffer.read():  # the build left its session: nothing to do
    sys.exit(0)
def send(sig):
    alive = False
    for pid in pids:
        try:
            os.kill(pid, sig); alive = True
        except OSError:
            pass
    if group:
        try:
            os.killpg(group, sig); alive = True
        except OSError:
            pass
    return alive
for sig in (signal.SIGTERM, signal.SIGKILL):
    if not send(sig):
        break
    deadline = time.monotonic() + 5
    while send(0) and time.monotonic() < deadline:
        time.sleep(0.1)
"""
"""Blocks on its stdin, a pipe from the build; end of file without a byte means the build died:
SIGTERM the group and pids, SIGKILL what is left after 5 s."""


class WorkDirBusyError(AsifError, RuntimeError):
    """Another build holds the work folder."""


@dataclass(frozen=True)
class BuildOwner:
    """Which process holds (or held) a work folder."""

    pid: int
    host: str
    started_at: str
    flow_run_id: str | None = None

    @classmethod
    def this_process(cls, flow_run_id: str | None = None) -> BuildOwner:
        """This process, now."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        return cls(os.getpid(), socket.gethostname(), now, flow_run_id)

    def describe(self) -> str:
        """e.g. ``pid 41 on host-a, started 2026-01-05T10:00:00+00:00, flow run 1f0c...``"""
        run = f", flow run {self.flow_run_id}" if self.flow_run_id else ""
        return f"pid {self.pid} on {self.host}, started {self.started_at}{run}"


class WorkDirLock:
    """``<work_dir>/build.lock``: an exclusive `flock` holding its owner as JSON.

    The kernel releases the lock when its process dies, however it dies; a clean `release`
    also empties the file. So an owner found in a file nobody locks is a build that was killed.
    (flock is per host: a work folder on a network file system shared by hosts is not
    protected across them.)
    """

    def __init__(self, work_dir: str | Path) -> None:
        self.path = Path(work_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self, owner: BuildOwner) -> BuildOwner | None:
        """Take the lock for `owner`; returns the killed build found in it, if any.

        Raises `WorkDirBusyError` naming the holder if another build holds it.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_owner(fd)
            os.close(fd)
            who = holder.describe() if holder else "owner unknown"
            raise WorkDirBusyError(
                f"work folder {self.path.parent} is in use by another build ({who}); "
                "wait for it to finish or use another work folder"
            ) from None
        previous = _read_owner(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(owner)).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return previous

    def release(self) -> None:
        """Empty the file (a clean end) and unlock it."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None


@dataclass(frozen=True)
class BuildSession:
    """A build holding its work folder: `owner` is this build, `stale` a killed earlier one."""

    owner: BuildOwner
    stale: BuildOwner | None


@contextmanager
def build_session(
    work_dir: str | Path, *, flow_run_id: str | None = None, guard: Sequence[int] = ()
) -> Iterator[BuildSession]:
    """Hold `work_dir` for one build (see the module doc); `guard`: more pids to end with it."""
    lock = WorkDirLock(work_dir)
    owner = BuildOwner.this_process(flow_run_id)
    stale = lock.acquire(owner)
    ray_before = _ray_running()
    watchdog = _start_watchdog(guard)
    try:
        yield BuildSession(owner, stale)
    finally:
        try:
            if _ray_running() and not ray_before:
                sys.modules["ray"].shutdown()
        finally:
            _stop_watchdog(watchdog)
            lock.release()


def _read_owner(fd: int) -> BuildOwner | None:
    data = os.pread(fd, 64 * 1024, 0)
    try:
        return BuildOwner(**json.loads(data)) if data.strip() else None
    except (ValueError, TypeError):  # not ours: show nothing rather than fail
        return None


def _ray_running() -> bool:
    ray = sys.modules.get("ray")  # never imported: nothing started
    return bool(ray is not None and ray.is_initialized())


def _start_watchdog(pids: Sequence[int]) -> subprocess.Popen[bytes]:
    group = os.getpgid(0) if os.getpgid(0) == os.getpid() else 0  # only a group we lead
    return subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(group), *map(str, pids)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # out of the group it may have to end
    )


def _stop_watchdog(watchdog: subprocess.Popen[bytes]) -> None:
    assert watchdog.stdin is not None
    try:
        watchdog.stdin.write(b"done")
        watchdog.stdin.close()
    except OSError:  # it died: nothing to stop
        pass
    watchdog.wait(timeout=10)
