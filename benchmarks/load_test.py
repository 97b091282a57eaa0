"""Load test of `asif serve` on this machine: /classify requests/s and latency percentiles.

Without `--url` it is self-contained and compares in one run: it builds an anchor table of
`--anchors` random rows for the shipped encoders (efficientnet-lite0, all-MiniLM-L6-v2),
starts `asif serve` on it without micro-batching (`--max-batch 1`) and with it, loads each
at every `--clients` count, then, with batching, swaps `--swaps` table versions (each
rewrites `--swap-rows` anchors) while 8 clients keep posting, and reports the server's
memory after the first and the last swap. With `--url` it loads a server already running.

Bounded: at most `--requests` requests and `--max-seconds` seconds per run, loopback hosts
only. Any non-200 answer counts as a failure (the exit status is 1 if there was one).

    python benchmarks/load_test.py                       # the comparison, about 3 minutes
    python benchmarks/load_test.py --url http://127.0.0.1:8000 --labels cat,dog,car \
        --requests 500 --clients 4 [--image photo.jpg]
"""

from __future__ import annotations

import argparse
import io
import ipaddress
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
from PIL import Image

IMAGE_ENCODER, TEXT_ENCODER = "efficientnet-lite0", "all-MiniLM-L6-v2"
LABELS = ["cat", "dog", "car", "tree", "house"]
MODES = {"one at a time": 1, "micro-batched": 16}  # --max-batch of each server


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
        p50, p95, p99 = (self.percentile_ms(q) for q in (50, 95, 99))
        return (
            f"{self.requests} requests in {self.seconds:.1f} s: {self.rps:.1f} req/s, "
            f"latency p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms, "
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


def sample_image() -> bytes:
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
    stop: threading.Event | None = None,
) -> LoadResult:
    """Post `image` to {url}/classify from `concurrency` threads until `requests` were sent,
    `max_seconds` passed or `stop` is set."""
    check_loopback(url)
    result = LoadResult()
    lock = threading.Lock()
    budget = iter(range(requests))
    deadline = time.monotonic() + max_seconds
    stop = stop or threading.Event()

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=max_seconds) as client:
            while time.monotonic() < deadline and not stop.is_set():
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


# -- the self-contained comparison ----------------------------------------------------------


def build_table(folder: Path, anchors: int, seed: int = 0) -> str:
    """A table of `anchors` random unit rows at the shipped encoders' widths; its uri."""
    from asif.encoders import load_image_encoder, load_text_encoder
    from asif.store.table import AnchorTable

    image, text = load_image_encoder(IMAGE_ENCODER), load_text_encoder(TEXT_ENCODER)
    dims = image.dim, text.dim
    uri = str(folder / "lancedb")
    table = AnchorTable.create_or_open(
        uri, image_encoder=image.name, text_encoder=text.name, image_dim=image.dim,
        text_dim=text.dim,
    )  # fmt: skip
    table.upsert(random_rows(np.random.default_rng(seed), range(anchors), dims))
    return uri


def random_rows(rng: np.random.Generator, numbers: range | np.ndarray, dims: tuple[int, int]):
    """Anchor rows `a{number}` with random unit embeddings (an upsert rewrites those ids)."""
    from asif.store.batch import build_anchor_batch

    n = len(numbers)

    def unit(d: int) -> np.ndarray:
        x = rng.standard_normal((n, d)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return build_anchor_batch(
        urls=[f"http://127.0.0.1/{i}.jpg" for i in numbers],
        captions=[f"a photo of thing {i}" for i in numbers],
        widths=[64] * n, heights=[64] * n,
        image_embeddings=unit(dims[0]), text_embeddings=unit(dims[1]),
        ids=[f"a{i}" for i in numbers],
    )  # fmt: skip


def encoder_rates(image: bytes, batch: int = 16, seconds: float = 5.0) -> tuple[float, float]:
    """Images/s of the image encoder alone, one image per call and `batch` per call: the
    ceilings of the two servers' throughput."""
    from asif.encoders import decode_image, load_image_encoder

    encoder, picture = load_image_encoder(IMAGE_ENCODER), decode_image(image)
    rates = []
    for n in (1, batch):
        encoder.encode([picture] * n, batch_size=n)  # warm-up
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 2:
            encoder.encode([picture] * n, batch_size=n)
            calls += 1
        rates.append(calls * n / (time.perf_counter() - start))
    return rates[0], rates[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(uri: str, max_batch: int, log: Path) -> Iterator[tuple[str, int]]:
    """`asif serve` on `uri` in a subprocess (polling every 0.2 s); its url and pid."""
    port = free_port()
    command = [
        sys.executable, "-m", "asif.serve", "--table", uri, "--port", str(port),
        "--watch-interval", "0.2", "--max-batch", str(max_batch),
    ]  # fmt: skip
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise SystemExit(f"asif serve exited with {process.returncode}; see {log}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"asif serve did not start within 180 s; see {log}")
            time.sleep(0.5)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def rss_mib(pid: int) -> float:
    """Resident memory of process `pid` (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class SwapResult:
    """Requests served while the table moved, and the server's memory along the way."""

    load: LoadResult
    swaps: int
    rss_after_first: float
    rss_after_last: float

    @property
    def growth(self) -> float:
        return self.rss_after_last / self.rss_after_first - 1


def swaps_under_load(
    url: str, pid: int, uri: str, *, swaps: int, rows: int, anchors: int, image: bytes
) -> SwapResult:
    """Rewrite `rows` random anchors `swaps` times while 8 clients post, waiting each time
    until the server answers from the new version."""
    from asif.store.table import AnchorTable

    table = AnchorTable.open(uri)
    dims = table.image_dim, table.text_dim
    rng = np.random.default_rng(1)
    stop = threading.Event()
    result: list[LoadResult] = []
    hammer = threading.Thread(
        target=lambda: result.append(
            run_load(url, LABELS, image=image, requests=10**9, concurrency=8,
                     max_seconds=3600, stop=stop)
        )
    )  # fmt: skip
    hammer.start()
    memory = []
    try:
        for _ in range(swaps):
            table.upsert(random_rows(rng, rng.choice(anchors, rows, replace=False), dims))
            deadline = time.monotonic() + 60
            while httpx.get(f"{url}/version", timeout=10).json()["version"] != table.version:
                if time.monotonic() > deadline:
                    raise SystemExit(f"version {table.version} not served within 60 s")
                time.sleep(0.05)
            memory.append(rss_mib(pid))
    finally:
        stop.set()
        hammer.join()
    return SwapResult(result[0], swaps, memory[0], memory[-1])


def compare(args: argparse.Namespace) -> bool:
    """The whole comparison, printed as markdown tables; True if no request failed."""
    image = args.image.read_bytes() if args.image else sample_image()
    ok = True
    with tempfile.TemporaryDirectory(prefix="asif-load-") as tmp:
        uri = build_table(Path(tmp), args.anchors)
        alone, batched = encoder_rates(image)
        log = Path(tmp) / "serve.log"
        rows: list[tuple[int, str, LoadResult]] = []
        swap = None
        for mode, max_batch in MODES.items():
            with served(uri, max_batch, log) as (url, pid):
                run_load(url, LABELS, image=image, requests=20, concurrency=4)  # warm-up
                for clients in args.clients:
                    res = run_load(url, LABELS, image=image, requests=args.requests,
                                   concurrency=clients, max_seconds=args.max_seconds)  # fmt: skip
                    rows.append((clients, mode, res))
                    print(f"{clients:>3} clients, {mode}: {res.report()}", flush=True)
                if max_batch > 1 and args.swaps:
                    swap = swaps_under_load(
                        url, pid, uri, swaps=args.swaps, rows=args.swap_rows,
                        anchors=args.anchors, image=image,
                    )  # fmt: skip
        print(f"\n/classify, {args.anchors:,} anchors, {IMAGE_ENCODER} + {TEXT_ENCODER}, "
              f"{len(LABELS)} labels, {args.requests} requests per row; the image encoder "
              f"alone: {alone:.1f} images/s one per call, {batched:.1f} in batches of 16"
              "\n")  # fmt: skip
        print("| clients | encoder | req/s | vs one at a time | p50 ms | p95 ms | p99 ms |"
              " failed |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        base = {c: r.rps for c, m, r in rows if MODES[m] == 1}
        for clients, mode, r in sorted(rows, key=lambda x: (x[0], MODES[x[1]])):
            p50, p95, p99 = (r.percentile_ms(q) for q in (50, 95, 99))
            print(f"| {clients} | {mode} | {r.rps:.1f} | {r.rps / base[clients]:.2f}x | "
                  f"{p50:.0f} | {p95:.0f} | {p99:.0f} | {len(r.failures)} |")  # fmt: skip
            ok &= not r.failures
        if swap is not None:
            print(f"\n{swap.swaps} version swaps ({args.swap_rows} anchors rewritten each) under "
                  f"8 clients: {swap.load.report()}; server memory {swap.rss_after_first:.0f} MiB "
                  f"after the first swap, {swap.rss_after_last:.0f} MiB after the last "
                  f"({swap.growth:+.1%})")  # fmt: skip
            ok &= not swap.load.failures
        for _, _, r in rows:
            for failure in r.failures[:3]:
                print("  failed:", failure)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="load this running server instead of the comparison")
    parser.add_argument("--labels", default=",".join(LABELS), help="with --url")
    parser.add_argument("--image", type=Path, help="image to post (default: a synthetic PNG)")
    parser.add_argument("--requests", type=int, default=300, help="per run")
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--max-seconds", type=float, default=120.0, help="per run")
    parser.add_argument("--anchors", type=int, default=20_000)
    parser.add_argument("--swaps", type=int, default=20)
    parser.add_argument("--swap-rows", type=int, default=100)
    args = parser.parse_args()
    if args.url is None:
        sys.exit(0 if compare(args) else 1)
    image = args.image.read_bytes() if args.image else sample_image()
    labels = [s.strip() for s in args.labels.split(",") if s.strip()]
    with httpx.Client(base_url=args.url, timeout=10) as c:
        c.post("/classify", files={"image": ("w.png", image)}, data={"labels": labels})  # warm-up
    ok = True
    for clients in args.clients:
        result = run_load(args.url, labels, image=image, requests=args.requests,
                          concurrency=clients, max_seconds=args.max_seconds)  # fmt: skip
        print(f"{clients} clients: {result.report()}")
        for failure in result.failures[:5]:
            print("  failed:", failure)
        ok &= not result.failures
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
