"""Zero-shot classification throughput: streamed sparse ASIF against a dense numpy reference.

Each (method, N, d) runs in its own process, so memory is that process's own. The table shows
two amounts: "held", what the method keeps between queries (the anchors, and for ASIF the
row norms its bfloat16 scan keeps), and "work", the peak on top of that while classifying
(peak RSS minus RSS after the warm-up run).
The zero-shot classifier (prompt representations) is built once, outside the timing, for both.

A third run times only the float32 similarity products of the queries with all N anchors,
chunk by chunk ("float32 x": dense time / their time). The dense reference computes them all;
ASIF's scan multiplies in bfloat16 first (on CPUs that do so natively) and recomputes only a
few in float32, so it can pass this mark.

Each worker runs once untimed, then `--repeat` timed runs; the table shows the best (as
`timeit` advises: on a shared VM, slower runs measure interference, not the method) and, for
ASIF, the spread (slowest / fastest run).

`--scan` times the exact top-k search alone (k = 800) against the peers a user would pick
instead: faiss `IndexFlatIP` and a torch loop of chunked `mm` + `topk`, with ASIF's anchors
held in float32, float16 and int8. "same" is the share of queries whose top-k set equals
that of ASIF's float32 search over the same numbers: the float32 anchors for the peers, the
dequantised rows for float16 and int8 (whose rounding moves anchors across the k-th place).
With `--mmap`, float16 and int8 anchors are written to a .npy file block by block and scanned
memory-mapped, as `asif` reads a saved model: `--huge` does so for 10M anchors, where float32
anchors (and so the peers) would not fit in this machine's memory. `--device cuda` adds ASIF's
scan on that torch device for each ASIF precision of the run ("same" is then its agreement
with the CPU's float32 search of the same numbers).

    python benchmarks/relative.py                  # N = 10k, 100k, 1M; d = 384, 768
    python benchmarks/relative.py --sizes 10000 --dims 384 --queries 64
    python benchmarks/relative.py --scan --sizes 100000 1000000
    python benchmarks/relative.py --scan --huge    # 10M float16 and int8 anchors, memory-mapped
    python benchmarks/relative.py --scan --sizes 1000000 --device cuda   # and on a GPU
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from asif.scan.matrix import AnchorMatrix

K, P, CLASSES, TEMPLATES = 800, 8.0, 10, 8  # the paper's k and p, at its scale (1M anchors)
METHODS = ("dense", "asif", "products")
ASIF = ("float32", "float16", "int8")
SCAN_METHODS = (*ASIF, "faiss", "torch")
"""ASIF's exact scan at its three anchor precisions, then the peers."""


def rss_mb() -> float:
    """Current resident set size in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def reset_peak_rss() -> None:
    """Make the current RSS the process's peak (Linux: clear_refs 5 resets VmHWM)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def unit_blocks(n: int, d: int, seed: int, block: int = 100_000) -> Iterator[np.ndarray]:
    """n random unit rows, block by block."""
    rng = np.random.default_rng(seed)
    for s in range(0, n, block):
        x = rng.standard_normal((min(block, n - s), d), dtype=np.float32)
        yield x / np.linalg.norm(x, axis=1, keepdims=True)


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    """n random unit rows, made block by block so making them costs no extra peak memory."""
    out = np.empty((n, d), dtype=np.float32)
    at = 0
    for x in unit_blocks(n, d, seed):
        out[at : at + len(x)], at = x, at + len(x)
    return out


def mapped_anchors(n: int, d: int, precision: str, folder: Path) -> AnchorMatrix:
    """`unit_rows(n, d, 1)` at `precision`, written to .npy files block by block and read
    back memory-mapped (as `asif.model.folder.read_folder` does): never all in memory."""
    from asif.scan.matrix import AnchorMatrix

    folder.mkdir()
    rows = np.lib.format.open_memmap(folder / "rows.npy", "w+", np.dtype(precision), (n, d))
    scale = np.lib.format.open_memmap(folder / "scale.npy", "w+", np.float32, (n,))
    at = 0
    for x in unit_blocks(n, d, 1):
        part = AnchorMatrix.from_float(x, precision)  # type: ignore[arg-type]
        rows[at : at + len(x)] = part.data
        if part.scale is not None:
            scale[at : at + len(x)] = part.scale
        at += len(x)
    rows.flush()
    scale.flush()
    del rows, scale
    mapped = np.load(folder / "rows.npy", mmap_mode="r")
    return AnchorMatrix(mapped, np.load(folder / "scale.npy") if precision == "int8" else None)


def dense_relative(x: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """The straightforward reference: a full (n, N) similarity matrix and a dense r(x)."""
    sims = x @ anchors.T
    k = min(K, anchors.shape[0])
    keep = np.argpartition(sims, -k, axis=1)[:, -k:]
    rel = np.zeros_like(sims)
    rows = np.arange(len(x))[:, None]
    rel[rows, keep] = np.clip(sims[rows, keep], 0, None) ** P
    rel /= np.maximum(np.linalg.norm(rel, axis=1, keepdims=True), 1e-30)
    return rel


def scan_search(
    method: str, anchors: np.ndarray | AnchorMatrix, queries: np.ndarray, device: str = "cpu"
) -> Callable[[], np.ndarray]:
    """A function giving each query's top-K anchor rows by `method` (SCAN_METHODS); it holds
    the anchors its own way (the caller drops its copy). ASIF's methods take an
    `AnchorMatrix` of their precision, and scan on `device`."""
    from asif.scan.exact import exact_topk
    from asif.scan.matrix import AnchorMatrix

    n = len(anchors)
    if isinstance(anchors, AnchorMatrix):
        matrix = anchors
        return lambda: exact_topk(queries, matrix, K, device=device)[1]
    if method == "faiss":
        import faiss

        index = faiss.IndexFlatIP(anchors.shape[1])
        index.add(anchors)
        return lambda: index.search(queries, min(K, n))[1]
    if method == "torch":
        import torch

        from asif.scan.exact import DEFAULT_CHUNK

        held, q = torch.from_numpy(anchors.copy()), torch.from_numpy(queries)

        def chunked() -> np.ndarray:
            best_v = torch.empty((len(q), 0))
            best_i = torch.empty((len(q), 0), dtype=torch.int64)
            for start in range(0, n, DEFAULT_CHUNK):
                sims = q @ held[start : start + DEFAULT_CHUNK].T
                v, i = torch.topk(sims, min(K, sims.shape[1]), dim=1)
                v, i = torch.cat([best_v, v], 1), torch.cat([best_i, i + start], 1)
                best_v, top = torch.topk(v, min(K, v.shape[1]), dim=1)
                best_i = i.gather(1, top)
            return best_i.numpy()

        return chunked
    raise ValueError(f"{method} scans an AnchorMatrix")


def run_worker(method: str, n: int, d: int, n_queries: int, repeat: int, out: Path) -> dict:
    """Build anchors and the classifier, then time classifying `n_queries` images (a
    SCAN_METHODS method: time the top-K search of them; "float16-mmap" and "int8-mmap":
    memory-mapped; "...@DEVICE": ASIF's scan on a torch device)."""
    import asif.model  # every method's process holds the same libraries before "held" starts
    from asif.scan.exact import exact_topk
    from asif.scan.matrix import AnchorMatrix

    libraries = rss_mb()
    spec, _, device = method.partition("@")
    precision, _, mapped = spec.partition("-")
    if precision in SCAN_METHODS:
        queries = unit_rows(n_queries, d, 3)
        files = out.with_suffix("")
        if mapped:
            matrix = mapped_anchors(n, d, precision, files)
        elif precision in ASIF:
            matrix = AnchorMatrix.from_float(unit_rows(n, d, 1), precision)  # type: ignore[arg-type]
        else:  # a peer: it copies the rows its own way, this copy is dropped before timing
            search = scan_search(precision, unit_rows(n, d, 1), queries)
            return _timed(search, repeat, out, libraries)
        search = scan_search(precision, matrix, queries, device or "cpu")
        timed = _timed(search, repeat, out, libraries)
        if precision != "float32":  # the float32 search over the rows they hold
            found = exact_topk(queries, matrix, K, bfloat16=False, device="cpu")[1]
            np.save(out.with_suffix(".dequantised.npy"), found)
        if mapped:
            shutil.rmtree(files)
        return timed
    image_anchors, text_anchors = unit_rows(n, d, 1), unit_rows(n, d, 2)
    images, prompts = unit_rows(n_queries, d, 3), unit_rows(CLASSES * TEMPLATES, d, 4)
    if method == "products":
        from asif.scan.exact import DEFAULT_CHUNK

        def classify() -> np.ndarray:
            sims = np.empty((n_queries, DEFAULT_CHUNK), dtype=np.float32)
            for start in range(0, n, DEFAULT_CHUNK):
                part = image_anchors[start : start + DEFAULT_CHUNK]
                np.matmul(images, part.T, out=sims[:, : len(part)])
            return sims[:, :CLASSES]

    elif method == "dense":
        text_rel = dense_relative(prompts, text_anchors)

        def classify() -> np.ndarray:
            s = dense_relative(images, image_anchors) @ text_rel.T
            return s.reshape(len(s), CLASSES, TEMPLATES).max(axis=2)

    else:
        settings = asif.model.ModelSettings("bench", "bench", K, P)
        model = asif.model.AsifModel.from_embeddings(
            image_anchors, text_anchors, [""] * n, settings, ids=[str(i) for i in range(n)]
        )
        del image_anchors, text_anchors
        names = [f"class {c}" for c in range(CLASSES)]
        templates = [f"template {t} {{}}" for t in range(TEMPLATES)]
        clf = model.zero_shot_classifier(names, templates, "max", prompts)

        def classify() -> np.ndarray:
            return model.classify_embeddings(images, clf).scores

    return _timed(classify, repeat, out, libraries)


def _timed(run: Callable[[], np.ndarray], repeat: int, out: Path, libraries: float) -> dict:
    """Run once untimed, then `repeat` timed runs; save the last result to `out`."""
    run()  # warm-up: thread pools start, row norms are measured, fresh memory is backed
    base = rss_mb()
    reset_peak_rss()
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - start)
    np.save(out, result)
    work = max(peak_rss_mb() - base, 0.0)
    return {"seconds": seconds, "work_mb": work, "held_mb": base - libraries}


def measure(method: str, n: int, d: int, n_queries: int, repeat: int, out: Path) -> dict:
    args = [method, str(n), str(d), str(n_queries), str(repeat), str(out)]
    done = subprocess.run(
        [sys.executable, __file__, "--worker", *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(n: int, d: int, n_queries: int, repeat: int, tmp: Path) -> str:
    """One table row: the methods on the same data, and how far their scores differ.

    Times are the best of `repeat` runs after a warm-up (as `timeit` advises: slower runs
    measure interference from elsewhere); the spread of the asif runs is shown too.
    """
    runs = {m: measure(m, n, d, n_queries, repeat, tmp / f"{m}.npy") for m in METHODS}
    diff = np.abs(np.load(tmp / "dense.npy") - np.load(tmp / "asif.npy")).max()
    qps = {m: n_queries / min(r["seconds"]) for m, r in runs.items()}
    spread = max(runs["asif"]["seconds"]) / min(runs["asif"]["seconds"])
    held = {m: r["held_mb"] for m, r in runs.items()}
    work = {m: r["work_mb"] for m, r in runs.items()}
    return (
        f"{n:>9} {d:>4} | {qps['dense']:>10.1f} {qps['asif']:>10.1f} "
        f"{qps['asif'] / qps['dense']:>7.1f}x {qps['products'] / qps['dense']:>8.1f}x "
        f"{spread:>7.2f} | {held['dense']:>6.0f} {held['asif']:>6.0f} | {work['dense']:>6.0f} "
        f"{work['asif']:>6.0f} {work['dense'] / max(work['asif'], 1):>6.1f}x | {diff:>10.2e}"
    )


def compare_scans(
    n: int, d: int, n_queries: int, repeat: int, tmp: Path, methods: Sequence[str]
) -> list[str]:
    """One table row per method on the same anchors and queries."""
    runs = {m: measure(m, n, d, n_queries, repeat, tmp / f"{m}.npy") for m in methods}
    qps = {m: n_queries / min(r["seconds"]) for m, r in runs.items()}
    lines = []
    for m, r in runs.items():
        found = tmp / f"{m}.npy"
        exact = found.with_suffix(".dequantised.npy")
        same = _same_sets(found, exact if exact.exists() else tmp / "float32.npy")
        name = m if m in ("faiss", "torch") else f"asif {m}"
        ratio = f"{qps['float32'] / qps[m]:>10.2f}x" if "float32" in qps else f"{'-':>11}"
        lines.append(
            f"{n:>9} {d:>4} {name:<17} {qps[m]:>9.1f} {ratio} "
            f"{r['held_mb']:>9.0f} {r['work_mb']:>9.0f} {same:>6.1%}"
        )
    return lines


def _same_sets(found: Path, reference: Path) -> float:
    """The share of queries whose top-k rows are the same set in both files."""
    a, b = (np.sort(np.load(p), axis=1) for p in (found, reference))
    return float(np.mean(np.all(a == b, axis=1)))


def scan_table(args: argparse.Namespace) -> None:
    header = (
        f"{'N':>9} {'d':>4} {'method':<17} {'queries/s':>9} {'asif f32 is':>11} "
        f"{'held MiB':>9} {'work MiB':>9} {'same':>6}"
    )
    print(
        f"exact top-{K} search, queries={args.queries} (best of {args.repeat} runs after a "
        "warm-up; 'asif f32 is': ASIF float32's queries/s over the row's; same: queries whose "
        "top-k set equals a float32 search of the same numbers)"
    )
    print(header)
    print("-" * len(header))
    methods: tuple[str, ...] = SCAN_METHODS
    if args.mmap or args.huge:  # the peers and float32 hold all anchors in memory
        methods = ("float16-mmap", "int8-mmap")
    if args.device:
        methods += tuple(f"{m}@{args.device}" for m in methods if m.split("-")[0] in ASIF)
    sizes = [10_000_000] if args.huge else args.sizes
    with tempfile.TemporaryDirectory() as tmp:
        for d in args.dims:
            for n in sizes:
                lines = compare_scans(n, d, args.queries, args.repeat, Path(tmp), methods)
                print("\n".join(lines), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[384, 768])
    parser.add_argument("--queries", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per method (best shown)")
    parser.add_argument("--scan", action="store_true", help="time the top-k search alone")
    parser.add_argument(
        "--mmap", action="store_true", help="--scan: float16 and int8 anchors memory-mapped"
    )
    parser.add_argument("--huge", action="store_true", help="--scan --mmap at N = 10M")
    parser.add_argument("--device", help="--scan: ASIF also on this torch device, e.g. cuda")
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        method, n, d, q, repeat, out = args.worker
        print(json.dumps(run_worker(method, int(n), int(d), int(q), int(repeat), Path(out))))
        return
    if args.scan:
        scan_table(args)
        return

    header = (
        f"{'N':>9} {'d':>4} | {'dense q/s':>10} {'asif q/s':>10} {'speed x':>8} {'float32 x':>9} "
        f"{'spread':>7} | "
        f"{'held MiB':>13} | {'work MiB':>13} {'work /':>7} | {'max |diff|':>10}"
    )
    print(
        f"k={K} p={P} queries={args.queries} prompts={CLASSES}x{TEMPLATES} "
        f"(best of {args.repeat} runs after a warm-up; spread: slowest / fastest asif run; "
        "MiB: dense, asif)"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for d in args.dims:
            for n in args.sizes:
                print(compare(n, d, args.queries, args.repeat, Path(tmp)), flush=True)


if __name__ == "__main__":
    main()
