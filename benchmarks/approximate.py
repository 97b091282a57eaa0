"""Approximate top-k from a LanceDB vector index vs the exact in-memory scan, in the same run.

A synthetic zero-shot task (anchors, query images and class prompts clustered around class
centres, d = 384 for image and text) is written to an anchor table, a vector index is built
on both embedding columns (build time reported), then each mode runs in its own process so
peak memory is its own: queries/s (one batch of all queries, and one query at a time), peak
RSS, and agreement with exact: top-1 class agreement, overlap of the top-k anchor sets, and
the mean absolute error of the class scores.

    python benchmarks/approximate.py                      # N = 1M (index build: minutes)
    python benchmarks/approximate.py --n 100000 --index hnsw_sq
    python benchmarks/approximate.py --workdir /tmp/a --refine 20 --reuse-exact   # re-run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from asif.model.from_table import index_model_from_table, model_from_table, table_settings
from asif.model.relative import SparseRelative, topk_overlap
from asif.model.settings import DEFAULT_K, DEFAULT_P
from asif.model.zero_shot import ZeroShotClassifier
from asif.scan.lance_index import SearchSettings, build_indexes, indexed_columns
from asif.store.batch import build_anchor_batch
from asif.store.table import AnchorTable

DIM, CLASSES, WRITE_BATCH = 384, 10, 100_000


def noisy(rng: np.random.Generator, centers: np.ndarray, labels: np.ndarray, noise: float):
    x = centers[labels] + noise * rng.standard_normal((len(labels), centers.shape[1]))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_task(uri: str, n: int, queries: int) -> None:
    """Write the anchor table, and the query images and class prompts next to it."""
    rng = np.random.default_rng(0)
    image_centers, text_centers = rng.standard_normal((2, CLASSES, DIM))
    table = AnchorTable.create_or_open(
        uri, image_encoder="synthetic-image", text_encoder="synthetic-text",
        image_dim=DIM, text_dim=DIM,
    )  # fmt: skip
    for start in range(0, n, WRITE_BATCH):
        m = min(WRITE_BATCH, n - start)
        labels = rng.integers(0, CLASSES, m)
        batch = build_anchor_batch(
            urls=[f"https://img.example/{i}.jpg" for i in range(start, start + m)],
            captions=[f"caption {i}" for i in range(start, start + m)],
            widths=[256] * m,
            heights=[256] * m,
            image_embeddings=noisy(rng, image_centers, labels, 1.0),
            text_embeddings=noisy(rng, text_centers, labels, 1.0),
        )
        table.lance_table.add(table.conform(batch))
    targets = rng.integers(0, CLASSES, queries)
    np.savez(
        Path(uri) / "task.npz",
        queries=noisy(rng, image_centers, targets, 1.2),
        prompts=noisy(rng, text_centers, np.arange(CLASSES), 0.5),
        targets=targets,
    )


def peak_rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def measure(uri: str, mode: str, args: argparse.Namespace) -> None:
    """Child process: load one mode, time the queries, save its answers, print JSON stats."""
    task = np.load(Path(uri) / "task.npz")
    table = AnchorTable.open(uri)
    start = time.perf_counter()
    settings = table_settings(table).replace(k=args.k, p=args.p)
    if mode == "exact":
        model = model_from_table(table, precision=args.precision, settings=settings)
    else:
        search = SearchSettings(nprobes=args.nprobes, refine_factor=args.refine or None)
        model = index_model_from_table(table, search=search, settings=settings)
    load = time.perf_counter() - start
    names = [f"class {c}" for c in range(CLASSES)]
    clf = ZeroShotClassifier.from_prompt_relatives(
        names, ["{}"], model.text_relative(task["prompts"])
    )
    start = time.perf_counter()
    rel = model.image_relative(task["queries"])
    batch_s = time.perf_counter() - start
    singles = task["queries"][: args.single]
    start = time.perf_counter()
    for q in singles:
        model.image_relative(q[None])
    single_s = time.perf_counter() - start
    pred = clf.predict(rel)
    np.savez(Path(uri) / f"{mode}.npz", indices=rel.indices, values=rel.values, scores=pred.scores)
    stats = {
        "load_s": load,
        "qps_batch": len(task["queries"]) / batch_s,
        "qps_single": len(singles) / single_s,
        "peak_rss_mb": peak_rss_mb(),
        "accuracy": pred.accuracy(task["targets"]),
    }
    print(json.dumps(stats))


def run_child(uri: str, mode: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--uri", uri, *forwarded(args)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def forwarded(args: argparse.Namespace) -> list[str]:
    keys = ("k", "p", "precision", "nprobes", "refine", "single")
    return [x for key in keys for x in (f"--{key}", str(getattr(args, key)))]


def compare(uri: str, n: int) -> dict:
    exact, approx = (np.load(Path(uri) / f"{m}.npz") for m in ("exact", "approx"))
    e = SparseRelative(exact["indices"], exact["values"], n)
    a = SparseRelative(approx["indices"], approx["values"], n)
    return {
        "top1_agreement": float(np.mean(exact["scores"].argmax(1) == approx["scores"].argmax(1))),
        "topk_overlap": topk_overlap(a, e),
        "score_mae": float(np.abs(exact["scores"] - approx["scores"]).mean()),
        "score_mean": float(np.abs(exact["scores"]).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--single", type=int, default=20, help="queries timed one at a time")
    parser.add_argument("--k", type=int, default=DEFAULT_K)
    parser.add_argument("--p", type=float, default=DEFAULT_P)
    parser.add_argument("--precision", default="float32", help="of the exact in-memory model")
    parser.add_argument("--index", default="ivf_pq", choices=("ivf_pq", "hnsw_sq"))
    parser.add_argument("--partitions", type=int, help="IVF partitions (default: LanceDB's)")
    parser.add_argument("--sub-vectors", type=int, help="PQ sub-vectors (default: LanceDB's)")
    parser.add_argument("--nprobes", type=int, default=SearchSettings.nprobes)
    parser.add_argument("--refine", type=int, default=2, help="refine factor, 0 for none")
    parser.add_argument(
        "--workdir",
        help="keep the table, index and exact answers here to re-run with other "
        "search settings (default: a temporary folder)",
    )
    parser.add_argument(
        "--reuse-exact", action="store_true", help="with --workdir: reuse the exact run's stats"
    )
    parser.add_argument("--child", choices=("exact", "approx"), help=argparse.SUPPRESS)
    parser.add_argument("--uri", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure(args.uri, args.child, args)
        return
    with tempfile.TemporaryDirectory(prefix="asif-approx-") as tmp:
        uri = args.workdir or tmp
        if not (Path(uri) / "task.npz").is_file():
            start = time.perf_counter()
            make_task(uri, args.n, args.queries)
            print(f"N={args.n:,}: table written in {time.perf_counter() - start:.1f} s", flush=True)
        build = float("nan")
        if not indexed_columns(AnchorTable.open(uri)):
            start = time.perf_counter()
            build_indexes(
                AnchorTable.open(uri), args.index,
                num_partitions=args.partitions, num_sub_vectors=args.sub_vectors,
            )  # fmt: skip
            build = time.perf_counter() - start
            print(f"{args.index} index on both columns built in {build:.1f} s", flush=True)
        saved = Path(uri) / "exact.json"
        if args.reuse_exact and saved.is_file():
            exact = json.loads(saved.read_text())
        else:
            exact = run_child(uri, "exact", args)
            saved.write_text(json.dumps(exact))
        approx = run_child(uri, "approx", args)
        agreement = compare(uri, args.n)
    print(
        f"\nN={args.n:,}, d={DIM}, k={args.k}, p={args.p}, {args.queries} queries, "
        f"{CLASSES} classes; exact: {args.precision} in memory; approximate: {args.index}, "
        f"nprobes={args.nprobes}, refine={args.refine}; index build {build:.1f} s"
    )
    print(f"{'':<22}{'exact':>12}{'approx':>12}{'approx/exact':>14}")
    for key, label in (
        ("load_s", "load s"),
        ("qps_batch", "queries/s (batch)"),
        ("qps_single", "queries/s (one)"),
        ("peak_rss_mb", "peak RSS MiB"),
        ("accuracy", "zero-shot accuracy"),
    ):
        ratio = approx[key] / exact[key] if exact[key] else float("nan")
        print(f"{label:<22}{exact[key]:>12.3f}{approx[key]:>12.3f}{ratio:>13.2f}x")
    print(
        f"top-1 class agreement {agreement['top1_agreement']:.3f}, "
        f"top-k anchor overlap {agreement['topk_overlap']:.3f}, class score MAE "
        f"{agreement['score_mae']:.5f} (mean |score| {agreement['score_mean']:.5f})"
    )


if __name__ == "__main__":
    main()
