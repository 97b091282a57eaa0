"""`asif evaluate`: the evaluate flow's measurement from the command line, without Prefect.

It evaluates one anchor table version on the benchmarks named with ``--benchmark
NAME[=ROOT]`` (classification or retrieval), stores the rows in the evaluations table,
writes CLIP_benchmark result files, their CSV and the unknown-rate figure, and prints the
results. ``--paper`` adds the paper's benchmarks (ImageNet, CIFAR-100, Pets, ImageNet-v2:
those given a root are evaluated) and prints and saves the table beside the paper's figures.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from asif.model.settings import DEFAULT_K, DEFAULT_P
from asif.model.zero_shot import DEFAULT_STRATEGY, STRATEGIES

DEFAULT_BENCHMARK = "fashion-mnist"


def parse_benchmark(text: str) -> tuple[str, str | None]:
    """`NAME` or `NAME=ROOT`."""
    name, _, root = text.partition("=")
    if not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME or NAME=ROOT, got {text!r}")
    return name.strip(), (root or None)


def _version(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def cmd_evaluate(args: argparse.Namespace) -> None:
    from asif.evaluation.benchmarks import load_benchmark
    from asif.evaluation.evaluate import EvalConfig, evaluate_version
    from asif.evaluation.exports import export
    from asif.evaluation.paper import PAPER_ACC1, PAPER_SPLITS
    from asif.evaluation.report import results_markdown
    from asif.evaluation.run import open_setup

    config = EvalConfig.overriding(args.k, args.p, args.strategy)  # bad settings: before I/O
    if args.paper and not args.benchmarks:
        raise ValueError(
            "--paper needs the benchmarks' data: --benchmark NAME=ROOT with NAME one of "
            f"{', '.join(PAPER_ACC1)} (others, e.g. fashion-mnist, are added to the table)"
        )
    chosen = dict(args.benchmarks or [(DEFAULT_BENCHMARK, None)])
    setup = open_setup(args.table, args.table_name, args.version, cache_dir=args.cache_dir)
    benchmarks = [
        load_benchmark(
            name, args.split or PAPER_SPLITS.get(name, "test"), root, args.limit, seed=args.seed
        )
        for name, root in chosen.items()
    ]
    rows = evaluate_version(
        setup.table,
        benchmarks,
        [config],
        cache=setup.cache,
        evaluations=setup.evaluations,
        force=args.force,
        progress=not args.quiet,
    )
    t = setup.table
    out = Path(args.output or Path(setup.plots_dir) / f"{t.name}-v{t.version}")
    exported = export(rows, out, paper=args.paper)
    print(
        f"{t.name} version {t.version} ({len(t):,} anchors), k={rows[0]['k']}, p={rows[0]['p']:g}"
    )
    print()
    print(results_markdown(rows))
    if exported.paper is not None:
        print()
        print(exported.paper)
    print()
    files = f"{len(exported.results)} JSON file{'s' if len(exported.results) != 1 else ''}"
    print(f"CLIP_benchmark results: {exported.csv} ({files} in clip_benchmark/ beside it)")
    for plot in exported.plots:
        print(f"plot: {plot.path} (data: {plot.sidecar})")
    if exported.paper_path is not None:
        print(f"paper table: {exported.paper_path}")


def add_evaluate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `evaluate` command to the `asif` CLI's subparsers."""
    p = subparsers.add_parser(
        "evaluate",
        help="zero-shot benchmarks of an anchor table version (CLIP_benchmark format)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--table", default="asif-data/lancedb", help="LanceDB folder or s3:// uri")
    p.add_argument("--table-name", default="anchors")
    p.add_argument("--version", type=_version, help="version number or tag (default: latest)")
    p.add_argument(
        "--benchmark", dest="benchmarks", type=parse_benchmark, action="append",
        metavar="NAME[=ROOT]",
        help=f"repeatable; default {DEFAULT_BENCHMARK}. Classification: fashion-mnist, digits, "
        "cifar10, cifar100, imagenet, imagenet-v2, pets, image-folder, torchvision:<Name>; "
        "retrieval: coco, flickr30k, flickr8k, captioned-folder",
    )  # fmt: skip
    p.add_argument(
        "--paper", action="store_true",
        help="the paper's table: imagenet, cifar100, pets, imagenet-v2 (those given ROOTs)",
    )  # fmt: skip
    p.add_argument("--split", help="default: test (imagenet: val)")
    p.add_argument("--limit", type=int, help="images per benchmark (default: all)")
    p.add_argument("--seed", type=int, default=0, help="which images --limit keeps")
    p.add_argument("--k", type=int, help=f"default: the model's ({DEFAULT_K})")
    p.add_argument("--p", type=float, help=f"default: the model's ({DEFAULT_P:g})")
    p.add_argument("--strategy", default=DEFAULT_STRATEGY, choices=STRATEGIES)
    p.add_argument("--force", action="store_true", help="re-measure settings already stored")
    p.add_argument(
        "--output", help="results folder (default: <table>/evaluation-plots/<name>-v<version>)"
    )
    p.add_argument(
        "--cache-dir", default=os.environ.get("ASIF_EVAL_CACHE"),
        help="embedding cache (default: $ASIF_EVAL_CACHE or <table>/evaluation-cache)",
    )  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=cmd_evaluate, input_errors=(ValueError,))
    return p
