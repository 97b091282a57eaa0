"""The `asif` command line: run the demo, classify and explain images with a saved model.

Input the library refuses (templates, strategy, labels, settings, images, model folders) is an
`AsifError`; `main` turns it, and missing or clashing files, into one line on stderr and exit
status 2, so the commands check nothing themselves.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asif.demo import (
    ANCHORS_PER_CLASS,
    IMAGE_ENCODER,
    MODEL_DIR,
    PAIRS_DIR,
    TEST_PER_CLASS,
    run_demo,
)
from asif.errors import AsifError
from asif.model.settings import DEFAULT_K
from asif.model.zero_shot import (
    DEFAULT_STRATEGY,
    DEFAULT_TEMPLATES,
    STRATEGIES,
    check_strategy,
    parse_labels,
)

if TYPE_CHECKING:
    from asif.model import AsifModel


def _load(args: argparse.Namespace) -> AsifModel:
    from asif.encoders import load_image_encoder, load_text_encoder
    from asif.model import AsifModel

    model = AsifModel.load(args.model)
    names = model.settings
    model.attach_encoders(
        load_image_encoder(args.image_encoder or names.image_encoder),
        load_text_encoder(args.text_encoder or names.text_encoder),
    )
    return model if args.k is None else model.with_settings(k=args.k)


def _templates(args: argparse.Namespace) -> list[str]:
    return args.templates or list(DEFAULT_TEMPLATES)


def cmd_demo(args: argparse.Namespace) -> None:
    result = run_demo(
        args.output,
        args.pairs_dir,
        anchors_per_class=args.anchors_per_class,
        test_per_class=args.test_per_class,
        image_encoder=args.image_encoder,
        k=args.k,
    )
    print(result.report())


def cmd_classify(args: argparse.Namespace) -> None:
    labels, strategy = parse_labels([args.labels]), check_strategy(args.strategy)  # before loading
    model = _load(args)
    pred = model.classify(
        args.images, labels, _templates(args), strategy, args.threshold, progress=True
    )
    top = pred.topk(args.top)
    rows: list[dict[str, Any]] = [
        {
            "image": str(image),
            "label": label,
            "score": float(pred.scores[i].max()),
            "top": [[pred.class_names[c], round(float(pred.scores[i, c]), 6)] for c in top[i]],
        }
        for i, (image, label) in enumerate(zip(args.images, pred.labels, strict=True))
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    width = max(len(r["image"]) for r in rows)
    print(f"{'image':<{width}}  {'label':<16} {'score':>8}  top")
    for r in rows:
        top_text = ", ".join(f"{c} {s:.4f}" for c, s in r["top"])
        print(f"{r['image']:<{width}}  {r['label']:<16} {r['score']:>8.4f}  {top_text}")


def cmd_explain(args: argparse.Namespace) -> None:
    labels, strategy = parse_labels([args.labels]), check_strategy(args.strategy)  # before loading
    model = _load(args)
    print(model.explain(args.image, labels, _templates(args), strategy, args.label, args.top))


def cmd_info(args: argparse.Namespace) -> None:
    from asif.model.folder import read_settings

    print(json.dumps(read_settings(args.model), indent=2))


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=MODEL_DIR, help="saved model folder made by asif demo")
    p.add_argument("--labels", required=True, help="comma-separated class names")
    p.add_argument(
        "--template",
        dest="templates",
        action="append",
        help="prompt with {} for the class; repeatable (default "
        + ", ".join(map(repr, DEFAULT_TEMPLATES))
        + ")",
    )
    p.add_argument("--strategy", default=DEFAULT_STRATEGY, help=f"one of {', '.join(STRATEGIES)}")
    p.add_argument("--k", type=int, help="override the model's k")
    p.add_argument("--image-encoder", help="image encoder spec, if not the one the model names")
    p.add_argument("--text-encoder", help="text encoder spec, if not the one the model names")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asif", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="build anchors from labelled images, classify held-out ones")
    p.add_argument("--output", default=MODEL_DIR, help="where to save the model")
    p.add_argument(
        "--pairs-dir",
        default=PAIRS_DIR,
        help="where to write the anchor pairs as captioned images (input of build-anchors)",
    )
    p.add_argument("--anchors-per-class", type=int, default=ANCHORS_PER_CLASS)
    p.add_argument("--test-per-class", type=int, default=TEST_PER_CLASS)
    p.add_argument("--image-encoder", default=IMAGE_ENCODER)
    p.add_argument("--k", type=int, help=f"the model's k (default {DEFAULT_K})")
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("classify", help="zero-shot labels for images")
    p.add_argument("images", nargs="+", type=Path)
    _model_options(p)
    p.add_argument("--threshold", type=float, help='answer "unknown" below this score')
    p.add_argument("--top", type=int, default=3, help="how many classes to list per image")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=cmd_classify)

    p = sub.add_parser("explain", help="the anchor pairs behind an image's label")
    p.add_argument("image", type=Path)
    _model_options(p)
    p.add_argument("--label", help="explain this class instead of the predicted one")
    p.add_argument("--top", type=int, default=5, help="how many anchor pairs to show")
    p.set_defaults(run=cmd_explain)

    p = sub.add_parser("info", help="settings of a saved model")
    p.add_argument("--model", default=MODEL_DIR)
    p.set_defaults(run=cmd_info)

    from asif.serve.cli import add_serve_parser

    add_serve_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; 0 on success, 2 (argparse's status for bad usage) on bad input."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (AsifError, OSError) as exc:
        print(f"asif {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
