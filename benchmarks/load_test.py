"""Load test of a running `asif serve` on this machine: requests/s and latency percentiles.

Bounded: at most `--requests` requests and `--max-seconds` seconds, loopback hosts only.
Each worker thread posts the same image to /classify in a loop; any non-200 answer counts as
a failure (the exit status is 1 if there was one).

    python benchmarks/load_test.py --url http://127.0.0.1:8000 --labels cat,dog,car \
        --requests 500 --concurrency 4 [--image photo.jpg]
"""

from __future__ import annotations

import argparse
import io
import ipaddress
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
from PIL import Image


@dataclass
class LoadResult:
    """Latencies (s) of successful requests, failure messages and the wall time."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies) + len(self.failures)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies else float("nan")

    def report(self) -> str:
        p50, p90, p99 = (self.percentile_ms(q) for q in (50, 90, 99))
        return (
            f"{self.requests} requests in {self.seconds:.1f} s: {self.rps:.1f} req/s, "
            f"latency p50 {p50:.0f} ms, p90 {p90:.0f} ms, p99 {p99:.0f} ms, "
            f"max {max(self.latencies, default=0) * 1000:.0f} ms; {len(self.failures)} failed"
        )


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"refusing to load-test {host!r}: only loopback hosts (127.0.0.1)")


def test_image() -> bytes:
    """A small synthetic PNG (a red disc)."""
    yy, xx = np.mgrid[:128, :128]
    disc = (yy - 64) ** 2 + (xx - 64) ** 2 < 40**2
    pixels = np.where(disc[..., None], [220, 30, 30], [235, 235, 235]).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def run_load(
    url: str,
    labels: list[str],
    *,
    image: bytes,
    requests: int = 200,
    concurrency: int = 4,
    max_seconds: float = 60.0,
) -> LoadResult:
    """Post `image` to {url}/classify until `requests` were sent or `max_seconds` passed."""
    check_loopback(url)
    result = LoadResult()
    lock = threading.Lock()
    budget = iter(range(requests))
    deadline = time.monotonic() + max_seconds

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=max_seconds) as client:
            while time.monotonic() < deadline:
                with lock:
                    if next(budget, None) is None:
                        return
                start = time.perf_counter()
                try:
                    r = client.post(
                        "/classify",
                        files={"image": ("load.png", image, "image/png")},
                        data={"labels": labels},
                    )
                    error = None if r.status_code == 200 else f"{r.status_code}: {r.text[:200]}"
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                elapsed = time.perf_counter() - start
                with lock:
                    if error:
                        result.failures.append(error)
                    else:
                        result.latencies.append(elapsed)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - start
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--labels", default="cat,dog,car,tree,house")
    parser.add_argument("--image", type=Path, help="image to post (default: a synthetic PNG)")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    args = parser.parse_args()
    image = args.image.read_bytes() if args.image else test_image()
    labels = [s.strip() for s in args.labels.split(",") if s.strip()]
    with httpx.Client(base_url=args.url, timeout=10) as c:
        c.post("/classify", files={"image": ("w.png", image)}, data={"labels": labels})  # warm-up
    result = run_load(
        args.url,
        labels,
        image=image,
        requests=args.requests,
        concurrency=args.concurrency,
        max_seconds=args.max_seconds,
    )
    print(result.report())
    for failure in result.failures[:5]:
        print("  failed:", failure)
    sys.exit(1 if result.failures else 0)


if __name__ == "__main__":
    main()
