"""The evidence behind the default k and p (`asif.model.settings`): zero-shot top-1 accuracy on
Fashion-MNIST test images with the demo's anchors, over a k x p grid.

Anchors as `asif demo` makes them (`asif.demo.demo_anchors`: 100 training images per class,
each captioned with a sentence about its class; EfficientNet-Lite2 and all-MiniLM-L6-v2),
drawn once per seed, each draw an anchor table; the grid is the evaluation's k x p study
(`asif.evaluation.studies`), so images are embedded once (the embedding cache) and a rerun
with the same --workdir embeds nothing. Prints the mean over the draws and their spread.

    python benchmarks/choose_kp.py                                  # the table in docs/evaluate.md
    python benchmarks/choose_kp.py --template "a photo of a {}."    # other prompts
    python benchmarks/choose_kp.py --seeds 0 --limit 500 --ks 50 800 --ps 8
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from asif.demo import ANCHORS_PER_CLASS, IMAGE_ENCODER, TEXT_ENCODER, demo_anchors, demo_data
from asif.encoders import load_image_encoder, load_text_encoder
from asif.evaluation.benchmarks import load_benchmark
from asif.evaluation.embedding_cache import EmbeddingCache
from asif.evaluation.evaluate import EvalConfig
from asif.evaluation.studies import StudyOptions, run_study
from asif.model.settings import DEFAULT_K, DEFAULT_P
from asif.store.batch import build_anchor_batch
from asif.store.table import AnchorTable


def demo_table(uri: Path, per_class: int, seed: int) -> AnchorTable:
    """An anchor table holding the demo's anchors drawn with `seed` (built once)."""
    image_encoder, text_encoder = load_image_encoder(IMAGE_ENCODER), load_text_encoder(TEXT_ENCODER)
    pool, _ = demo_data()
    anchors, captions = demo_anchors(pool, per_class, seed)
    name = f"demo-anchors-{per_class}-s{seed}"
    try:
        table = AnchorTable.open(str(uri), name)
        if len(table) == len(anchors):
            return table
    except ValueError:  # not built yet
        pass
    image = image_encoder.encode(list(anchors.images), progress=True)
    text = text_encoder.encode(captions, progress=True)
    table = AnchorTable.create_or_open(
        str(uri),
        image_encoder=image_encoder.name,
        text_encoder=text_encoder.name,
        image_dim=image.shape[1],
        text_dim=text.shape[1],
        name=name,
    )
    height, width = np.asarray(anchors.images[0]).shape[:2]
    table.upsert(
        build_anchor_batch(
            urls=[f"{anchors.name}#{i}" for i in range(len(anchors))],
            captions=captions,
            widths=[width] * len(anchors),
            heights=[height] * len(anchors),
            image_embeddings=image,
            text_embeddings=text,
            image_encoder=image_encoder.name,
            text_encoder=text_encoder.name,
        )
    )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("asif-data/choose-kp"))
    parser.add_argument("--anchors-per-class", type=int, default=ANCHORS_PER_CLASS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="anchor draws")
    parser.add_argument("--limit", type=int, default=2000, help="test images (over the classes)")
    parser.add_argument("--ks", type=int, nargs="+", default=[10, 25, 50, 100, 200, 400, 800, 1000])
    parser.add_argument("--ps", type=float, nargs="+", default=[1.0, 2.0, 4.0, 8.0, 16.0])
    parser.add_argument("--template", dest="templates", action="append", help="repeatable")
    parser.add_argument("--strategy", default="max")
    args = parser.parse_args()

    bench = load_benchmark("fashion-mnist", "test", limit=args.limit, templates=args.templates)
    cache = EmbeddingCache(args.workdir / "cache")
    options = StudyOptions(ks=tuple(args.ks), ps=tuple(args.ps))
    acc1: dict[tuple[int, float], list[float]] = {}
    for seed in args.seeds:
        table = demo_table(args.workdir / "lancedb", args.anchors_per_class, seed)
        result = run_study(
            "kp", table, [bench], args.workdir / "plots", cache=cache, options=options,
            base=EvalConfig(strategy=args.strategy),
        )  # fmt: skip
        for row in result.rows:
            acc1.setdefault((row["k"], row["p"]), []).append(row["acc1"])

    print(
        f"Fashion-MNIST test, {len(bench)} images; {args.anchors_per_class * 10} demo anchors "
        f"({IMAGE_ENCODER}, {TEXT_ENCODER}), {len(args.seeds)} draw(s); strategy "
        f"{args.strategy}; templates {list(bench.templates)}\n"
        f"top-1 %, mean over draws (min-max); current default k={DEFAULT_K}, p={DEFAULT_P:g}\n"
    )
    print("| k \\ p | " + " | ".join(f"{p:g}" for p in args.ps) + " |")
    print("|---:|" + "---:|" * len(args.ps))
    for k in args.ks:
        cells = []
        for p in args.ps:
            v = 100 * np.asarray(acc1[k, p])
            spread = f" ({v.min():.1f}-{v.max():.1f})" if len(v) > 1 else ""
            cells.append(f"{v.mean():.1f}{spread}")
        print(f"| {k} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
