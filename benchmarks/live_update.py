"""Time from a committed change of 1,000 anchors to a live model serving it, vs a full reload.

For each table size N a synthetic anchor table is written (random unit rows, d = 384 for both
image and text embeddings to keep memory sane; EfficientNet-Lite2 would give 1280-d images),
a LiveModel is opened on it, then 1,000 anchors are added (one upsert = one version) and
1,000 removed (one delete). "incremental" is commit -> `LiveModel.refresh()` returned (read the
new fragments and the id column, patch the in-memory matrices); "full" is building the model
from the table at the same version from scratch, in the same run.

    python benchmarks/live_update.py                    # N = 100k, 1M
    python benchmarks/live_update.py --sizes 20000 --precision float16
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from asif.serve.live_model import LiveModel
from asif.store.batch import build_anchor_batch
from asif.store.table import AnchorTable

DIM = 384
WRITE_BATCH = 100_000


def unit_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def batch(rng: np.random.Generator, start: int, stop: int):
    n = stop - start
    return build_anchor_batch(
        urls=[f"https://img.example/{i}.jpg" for i in range(start, stop)],
        captions=[f"synthetic caption number {i}" for i in range(start, stop)],
        widths=[256] * n,
        heights=[256] * n,
        image_embeddings=unit_rows(rng, n),
        text_embeddings=unit_rows(rng, n),
        image_encoder="synthetic-image",
        text_encoder="synthetic-text",
    )


def make_table(uri: str, n: int, rng: np.random.Generator) -> AnchorTable:
    table = AnchorTable.create_or_open(
        uri, image_encoder="synthetic-image", text_encoder="synthetic-text",
        image_dim=DIM, text_dim=DIM,
    )  # fmt: skip
    for start in range(0, n, WRITE_BATCH):
        table.lance_table.add(table.conform(batch(rng, start, min(start + WRITE_BATCH, n))))
    return table


def timed_refresh(live: LiveModel) -> float:
    start = time.perf_counter()
    if not live.refresh():
        raise RuntimeError("the live model did not see the new version")
    return time.perf_counter() - start


def timed_full_load(table: AnchorTable, precision: str) -> float:
    start = time.perf_counter()
    LiveModel(table.uri, version=table.version, precision=precision)
    return time.perf_counter() - start


def run(n: int, change: int, precision: str) -> list[tuple[str, int, float, float, str]]:
    rng = np.random.default_rng(n)
    rows = []
    with tempfile.TemporaryDirectory(prefix="asif-live-") as tmp:
        t0 = time.perf_counter()
        table = make_table(tmp, n, rng)
        print(f"N={n:,}: table written in {time.perf_counter() - t0:.1f} s", flush=True)
        live = LiveModel(tmp, precision=precision)
        table.upsert(batch(rng, n, n + change))
        add = timed_refresh(live)
        assert live.snapshot.how == "incremental" and len(live.snapshot.model) == n + change
        rows.append(("add", n, add, timed_full_load(table, precision), live.snapshot.how))
        table.remove([live.snapshot.model.anchors.ids[i] for i in range(0, 10 * change, 10)])
        remove = timed_refresh(live)
        assert len(live.snapshot.model) == n
        rows.append(("remove", n, remove, timed_full_load(table, precision), live.snapshot.how))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--change", type=int, default=1_000)
    parser.add_argument("--precision", default="float32")
    args = parser.parse_args()
    rows = [r for n in args.sizes for r in run(n, args.change, args.precision)]
    print(f"\n{args.change:,} anchors changed, d={DIM} image and text, {args.precision}")
    print(f"{'change':<8}{'N':>11}{'incremental s':>15}{'full reload s':>15}{'ratio':>8}  how")
    for what, n, inc, full, how in rows:
        print(f"{what:<8}{n:>11,}{inc:>15.3f}{full:>15.3f}{full / inc:>7.1f}x  {how}")


if __name__ == "__main__":
    main()
