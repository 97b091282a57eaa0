"""Anchor thumbnails: their size and cost, and finding one anchor by id (what `asif serve`'s
`GET /anchors/{id}` and its thumbnail do), with and without the id index build-anchors keeps.

Thumbnails are made (`make_thumbnail`) from scikit-image's photos resized as img2dataset stores
them (256 px on the short side). Lookups: a synthetic table of N rows (4-d embeddings, each row
with a real ~3 KB thumbnail), 200 random ids read with `AnchorTable.lookup` (caption and
thumbnail) by a scan, then after `AnchorTable.index_ids()`; the baseline is a Python dict from
id to row built from the whole id column, what a user would write instead (its build counted).

    python benchmarks/thumbnails.py                      # N = 100k, 1M
    python benchmarks/thumbnails.py --sizes 20000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import skimage.data
from PIL import Image

from asif.store.batch import build_anchor_batch
from asif.store.table import AnchorTable
from asif.store.thumbnails import make_thumbnail

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
          "immunohistochemistry", "retina")  # fmt: skip
WRITE_BATCH = 250_000
LOOKUPS = 200


def thumbnail_table() -> bytes:
    """Print the thumbnails' sizes and times; return one to store in the lookup tables."""
    print("| photo | 256 px copy | thumbnail bytes | ms |\n|---|---|---|---|")
    made = []
    for name in PHOTOS:
        image = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        scale = 256 / min(image.size)  # img2dataset's copy: the short side at 256 px
        image = image.resize((round(image.width * scale), round(image.height * scale)))
        make_thumbnail(image)  # warm
        start = time.perf_counter()
        data = make_thumbnail(image)
        ms = (time.perf_counter() - start) * 1000
        made.append(data)
        print(f"| {name} | {image.width}x{image.height} | {len(data):,} | {ms:.1f} |")
    sizes = [len(d) for d in made]
    print(f"\nmean {statistics.mean(sizes):,.0f} bytes, range {min(sizes):,}-{max(sizes):,}\n")
    return made[1]


def lookup_row(n: int, thumbnail: bytes) -> str:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        table = AnchorTable.create_or_open(
            folder, image_encoder="i", text_encoder="t", image_dim=4, text_dim=4
        )
        for start in range(0, n, WRITE_BATCH):
            m = min(WRITE_BATCH, n - start)
            emb = np.full((m, 4), 0.5, np.float32)
            table.upsert(build_anchor_batch(
                urls=[f"https://img.example/{i}.jpg" for i in range(start, start + m)],
                captions=[f"caption {i}" for i in range(start, start + m)],
                widths=[256] * m, heights=[256] * m, image_embeddings=emb, text_embeddings=emb,
                thumbnails=[thumbnail] * m,
            ))  # fmt: skip
        ids = table.read(["id"])["id"].to_pylist()
        wanted = [ids[i] for i in rng.integers(0, n, LOOKUPS)]

        def per_lookup() -> float:
            start = time.perf_counter()
            for anchor_id in wanted:
                assert table.lookup(anchor_id, ["caption", "thumbnail"]) is not None
            return (time.perf_counter() - start) / LOOKUPS * 1000

        scan = per_lookup()
        start = time.perf_counter()
        table.index_ids()
        index_s = time.perf_counter() - start
        indexed = per_lookup()
        start = time.perf_counter()
        rows = table.read(["id", "caption", "thumbnail"]).to_pylist()
        by_id = {row["id"]: row for row in rows}
        dict_build = time.perf_counter() - start
        start = time.perf_counter()
        assert all(by_id[a] for a in wanted)
        dict_ms = (time.perf_counter() - start) / LOOKUPS * 1000
    return (
        f"| {n:,} | {scan:.2f} | {indexed:.2f} ({scan / indexed:.1f}x) | {index_s:.2f} "
        f"| {dict_build:.2f} s, then {dict_ms:.4f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    thumbnail = thumbnail_table()
    print("| rows | lookup by scan (ms) | with the id index (ms, speed-up) | index build (s) "
          "| dict baseline: build, then ms per lookup |\n|---|---|---|---|---|")  # fmt: skip
    for n in args.sizes:
        print(lookup_row(n, thumbnail), flush=True)


if __name__ == "__main__":
    main()
