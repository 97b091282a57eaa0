"""Local stand-ins for the infrastructure: an S3 server (moto) and a Ray head, both loopback.

`moto_s3(bucket)` yields the storage options (and AWS_* env) of a bucket on a
`ThreadedMotoServer`. `ray_head(tmp_dir)` runs `ray start --head --block` in its own process
group with a fresh token (Ray 2.60 enables token auth: head and clients share
`RAY_AUTH_MODE=token` + `RAY_AUTH_TOKEN`, so ~/.ray/auth_token is neither read nor written)
and kills the group afterwards; `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` keeps Ray on 127.0.0.1
instead of the machine's outward address.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.prefect_fixtures import free_port, start_logged, stop_process_group

RAY_START_TIMEOUT = 90.0


@dataclass(frozen=True)
class S3Bucket:
    """A bucket on a local S3 server: its `s3://` uri, storage options and AWS_* env."""

    uri: str
    endpoint: str
    storage_options: dict[str, str]
    env: dict[str, str]


@contextmanager
def moto_s3(bucket: str | None = None) -> Iterator[S3Bucket]:
    """A moto S3 server on 127.0.0.1 with `bucket` (default: a fresh name) created.

    moto keeps its buckets per process, not per server: a fresh name isolates tests.
    """
    bucket = bucket or f"asif-{secrets.token_hex(4)}"
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
        }
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=bucket)
        options = {
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "aws_region": "us-east-1",
            "aws_endpoint": endpoint,
            "allow_http": "true",
        }
        yield S3Bucket(f"s3://{bucket}/lancedb", endpoint, options, env)
    finally:
        server.stop()


@dataclass(frozen=True)
class RayHead:
    """A running `ray start --head`: its address and the env a client needs to join it."""

    address: str
    env: dict[str, str]
    log_path: Path


@contextmanager
def ray_head(tmp_dir: str | Path, *, num_cpus: int = 1) -> Iterator[RayHead]:
    """Run a Ray head on 127.0.0.1 (token auth) until the block exits; its log goes to
    `tmp_dir`, its sessions to a short /tmp folder (Ray's socket paths must fit 107 bytes)."""
    root = Path(tmp_dir)
    root.mkdir(parents=True, exist_ok=True)
    ray_tmp = tempfile.mkdtemp(prefix="asif-ray-", dir="/tmp")
    port = free_port()
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("RAY_ADDRESS", None)
    ray = str(Path(sys.executable).with_name("ray"))
    cmd = [
        ray, "start", "--head", "--block",
        "--node-ip-address", "127.0.0.1",
        "--port", str(port),
        "--num-cpus", str(num_cpus),
        "--include-dashboard", "false",
        "--temp-dir", ray_tmp,
    ]  # fmt: skip
    log_path = root / "ray-head.log"
    process = start_logged(cmd, env, log_path)
    try:
        deadline = time.monotonic() + RAY_START_TIMEOUT
        while "Ray runtime started" not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"Ray head did not start (exit code {process.poll()}):\n"
                    + log_path.read_text(errors="replace")[-6000:]
                )
            time.sleep(0.5)
        address = f"127.0.0.1:{port}"
        yield RayHead(address, {**env, "RAY_ADDRESS": address}, log_path)
    finally:
        stop_process_group(process, timeout=20)
        shutil.rmtree(ray_tmp, ignore_errors=True)
