import os
import subprocess
import sys
import textwrap
import time
import types

import psutil
import pytest

from asif.pipeline.session import LOCK_NAME, WorkDirBusyError, WorkDirLock, build_session


def run_python(code: str, *args: str) -> subprocess.CompletedProcess:
    """`code` in a child that leads its own process group, as a command in a shell does."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )


def gone(pids: list[int], timeout: float = 20.0) -> bool:
    """Whether every pid exits (or is a zombie waiting for init) within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return True
        time.sleep(0.2)
    return False


def test_a_second_build_of_the_folder_is_refused(tmp_path):
    with build_session(tmp_path / "work") as session:
        assert session.stale is None and session.owner.pid == os.getpid()
        with pytest.raises(WorkDirBusyError, match=f"in use by another build \\(pid {os.getpid()}"):
            WorkDirLock(tmp_path / "work").acquire(session.owner)
    assert (tmp_path / "work" / LOCK_NAME).read_text() == ""  # a clean end empties it
    with build_session(tmp_path / "work") as again:
        assert again.stale is None


def test_a_killed_build_is_reported_to_the_next(tmp_path):
    killed = run_python(
        """
        import os, signal, sys
        from asif.pipeline.session import build_session
        with build_session(sys.argv[1], flow_run_id="run-1"):
            print(os.getpid(), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        """,
        str(tmp_path),
    )
    assert killed.returncode == -9, killed.stderr
    with build_session(tmp_path) as session:
        assert session.stale is not None
        assert (session.stale.pid, session.stale.flow_run_id) == (int(killed.stdout), "run-1")
        assert f"pid {killed.stdout.strip()} on " in session.stale.describe()


def test_a_killed_build_leaves_no_process_it_started(tmp_path):
    """SIGKILL skips every `finally`: the watchdog ends the build's process group and the
    guarded pids outside it (as Prefect's temporary server may be)."""
    killed = run_python(
        """
        import os, signal, subprocess, sys
        from asif.pipeline.session import build_session
        outside = subprocess.Popen(["sleep", "60"], start_new_session=True)
        with build_session(sys.argv[1], guard=[outside.pid]):
            inside = subprocess.Popen(["sleep", "60"])  # in the build's process group
            print(outside.pid, inside.pid, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        """,
        str(tmp_path),
    )
    pids = [int(p) for p in killed.stdout.split()]
    assert len(pids) == 2, killed.stderr
    assert gone(pids)


def test_a_finished_build_stops_its_watchdog_and_leaves_the_rest(tmp_path):
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        with build_session(tmp_path, guard=[other.pid]):
            watchdogs = [p for p in psutil.Process().children() if "-c" in p.cmdline()]
            assert len(watchdogs) == 1
        assert gone([w.pid for w in watchdogs], timeout=5)
        time.sleep(0.5)
        assert other.poll() is None  # only a dead build's processes are ended
    finally:
        other.kill()
        other.wait()


def test_the_ray_session_a_build_started_is_shut_down(tmp_path, monkeypatch):
    ray = types.SimpleNamespace(running=False)
    ray.is_initialized = lambda: ray.running
    ray.shutdown = lambda: setattr(ray, "running", False)
    monkeypatch.setitem(sys.modules, "ray", ray)
    with pytest.raises(RuntimeError), build_session(tmp_path):
        ray.running = True  # the build started Ray, then failed
        raise RuntimeError("embedding failed")
    assert ray.running is False
    ray.running = True  # a session the caller started before the build is the caller's
    with build_session(tmp_path):
        pass
    assert ray.running is True
