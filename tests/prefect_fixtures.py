"""A real Prefect server (and process workers) on 127.0.0.1 for tests, in subprocesses.

`running_prefect_server(tmp_dir)` starts `prefect server start` with its own PREFECT_HOME and
SQLite database under `tmp_dir`, waits for `/api/health`, and yields a `PrefectServer` whose
`env` is the environment to give child processes (PREFECT_API_URL and friends, no inherited
PREFECT_* settings). `running_process_worker(server, pool)` creates a process work pool and runs
`prefect worker start --pool POOL --type process` against it until the worker has registered.
Both stop their whole process group on exit and print their log file when startup fails.

In a test module::

    from tests.prefect_fixtures import prefect_server  # noqa: F401  (the fixture)

    def test_x(prefect_server): ...

or use the context managers directly for a custom lifetime.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_START_TIMEOUT = 120.0
WORKER_START_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0
PR_SET_PDEATHSIG = 1
_PREFECT = [sys.executable, "-m", "prefect"]
_QUIET_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_ENABLED": "false",
    "PREFECT_CLI_PROMPT": "false",
    "PREFECT_LOGGING_LEVEL": "INFO",
    "NO_ALBUMENTATIONS_UPDATE": "1",
    "HF_HUB_OFFLINE": "1",
    "WANDB_MODE": "disabled",
}


class PrefectProcessError(RuntimeError):
    """A Prefect server or worker subprocess that did not start in time or died."""


@dataclass(frozen=True)
class PrefectServer:
    """A running `prefect server start`: its API url, child-process env, home and log file."""

    api_url: str
    env: dict[str, str]
    home: Path
    log_path: Path
    process: subprocess.Popen

    def run_cli(
        self,
        *args: str,
        timeout: float = 120.0,
        cwd: str | Path | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run `prefect ARGS...` against this server; with `check`, raise with its output if
        it fails."""
        result = subprocess.run(
            [*_PREFECT, *args],
            env=self.env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check and result.returncode != 0:
            raise PrefectProcessError(
                f"`prefect {' '.join(args)}` exited with {result.returncode}\n"
                f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
            )
        return result

    def api(self, method: str, path: str, body: object | None = None) -> object:
        """Call the REST API (`path` relative to `api_url`, e.g. "/flow_runs/filter")."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.api_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")


@dataclass(frozen=True)
class PrefectWorker:
    """A running `prefect worker start`: its pool, name and log file."""

    pool: str
    name: str
    log_path: Path
    process: subprocess.Popen


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(home: Path, api_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without PREFECT_* settings, pointed at `home` and `api_url`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(_QUIET_ENV)
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_PROFILES_PATH": str(home / "profiles.toml"),
            "PREFECT_API_URL": api_url,
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        }
    )
    env.update(extra or {})
    return env


@contextmanager
def running_prefect_server(
    tmp_dir: str | Path,
    *,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = SERVER_START_TIMEOUT,
) -> Iterator[PrefectServer]:
    """Run `prefect server start` on a free loopback port until the block exits.

    Its home, database and log (`server.log`) live in `tmp_dir`. Raises `PrefectProcessError`
    (with the log) if `/api/health` does not answer within `timeout` seconds.
    """
    home = Path(tmp_dir).resolve()
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = server_env(home, api_url, extra_env)
    log_path = home / "server.log"
    cmd = [*_PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"]
    process = start_logged(cmd, env, log_path)
    server = PrefectServer(api_url, env, home, log_path, process)
    try:
        _wait_until(
            lambda: _healthy(api_url),
            process,
            log_path,
            timeout,
            f"Prefect server at {api_url}",
        )
        yield server
    finally:
        drain_prefect_services()
        stop_process_group(process)


def drain_prefect_services(timeout: float = 60) -> None:
    """Send this process's queued Prefect logs and events while the server still answers.

    Flows run in the test process queue them for background services; left queued when the
    server stops, they would be retried against it at interpreter exit, for a very long time.
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for service in (APILogWorker, EventsWorker):
        service.drain_all(timeout=timeout, at_exit=False)


@contextmanager
def running_process_worker(
    server: PrefectServer,
    pool: str,
    *,
    name: str | None = None,
    cwd: str | Path | None = None,
    extra_env: Mapping[str, str] | None = None,
    base_job_template: str | Path | None = None,
    timeout: float = WORKER_START_TIMEOUT,
) -> Iterator[PrefectWorker]:
    """Create (or overwrite) process work pool `pool` and run a worker on it until the block exits.

    The pool gets `base_job_template` (a JSON file) if given. The worker (and so every flow run
    it starts) gets `server.env` plus `extra_env`, and runs in `cwd`. Waits until the worker has
    registered with the server; its log is `<server home>/worker-<name>.log`.
    """
    name = name or f"{pool}-worker-{os.getpid()}"
    template = ["--base-job-template", str(base_job_template)] if base_job_template else []
    server.run_cli("work-pool", "create", pool, "--type", "process", "--overwrite", *template)
    env = {**server.env, **(extra_env or {})}
    log_path = server.home / f"worker-{name}.log"
    cmd = [*_PREFECT, "worker", "start", "--pool", pool, "--type", "process", "--name", name]
    process = start_logged(cmd, env, log_path, cwd=cwd)
    try:
        _wait_until(
            lambda: _worker_registered(server, pool, name),
            process,
            log_path,
            timeout,
            f"Prefect worker {name!r} on pool {pool!r}",
        )
        yield PrefectWorker(pool, name, log_path, process)
    finally:
        stop_process_group(process)


def start_logged(
    cmd: Sequence[str],
    env: Mapping[str, str],
    log_path: Path,
    *,
    cwd: str | Path | None = None,
) -> subprocess.Popen:
    """Start `cmd` as the leader of a new process group (for `stop_process_group`), without
    stdin, its output to `log_path`; it gets SIGTERM when this process dies."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


def stop_process_group(process: subprocess.Popen, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the process's group (it must lead one), then SIGKILL it after `timeout` seconds."""
    if process.poll() is not None:
        _kill_group(process.pid, signal.SIGKILL)
        return
    _kill_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    _kill_group(process.pid, signal.SIGKILL)
    process.wait(timeout=timeout)


def wait_for_flow_run(
    server: PrefectServer, flow_run_id: str, *, timeout: float = 300.0, logs: list[Path] = ()
) -> dict:
    """Poll a flow run until it reaches a final state; return it. Raises on timeout (with logs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = server.api("GET", f"/flow_runs/{flow_run_id}")
        state = (run.get("state") or {}).get("type")
        if state in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            return run
        time.sleep(1.0)
    raise PrefectProcessError(
        f"flow run {flow_run_id} not finished after {timeout:.0f}s (state {state})"
        + "".join(_log_tail(p) for p in logs)
    )


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A `prefect server start` on loopback for the test module, with a fresh database.

    (Module scope: each module importing the fixture gets its own definition anyway, so a
    session scope would keep one server per module alive until the session ends.)"""
    with running_prefect_server(tmp_path_factory.mktemp("prefect-server")) as server:
        yield server


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent (pytest) dies, even by SIGKILL."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def _kill_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _worker_registered(server: PrefectServer, pool: str, name: str) -> bool:
    try:
        workers = server.api("POST", f"/work_pools/{pool}/workers/filter", {})
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False
    return any(w.get("name") == name for w in workers or [])


def _wait_until(
    check, process: subprocess.Popen, log_path: Path, timeout: float, what: str
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stop_process_group(process)
            raise PrefectProcessError(
                f"{what} exited with code {process.returncode} before it was ready"
                + _log_tail(log_path)
            )
        if check():
            return
        time.sleep(0.5)
    stop_process_group(process)
    raise PrefectProcessError(f"{what} not ready after {timeout:.0f}s" + _log_tail(log_path))


def _log_tail(log_path: Path, chars: int = 8000) -> str:
    try:
        text = Path(log_path).read_text(errors="replace")
    except OSError:
        return f"\n(no log at {log_path})"
    return f"\n--- {log_path} (last {chars} chars) ---\n{text[-chars:]}"
