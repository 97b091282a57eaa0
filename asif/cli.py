"""The `asif` command line: run the demo, classify and explain images with a saved model."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from asif.errors import AsifError
from asif.model.zero_shot import DEFAULT_TEMPLATES, STRATEGIES

DEFAULT_MODEL = "asif-data/demo-model"


def _labels(text: str) -> list[str]:
    labels = [s.strip() for s in text.split(",") if s.strip()]
    if not labels:
        raise argparse.ArgumentTypeError("--labels needs at least one class name, e.g. cat,dog")
    return labels


def _load(args: argparse.Namespace):
    from asif.encoders import load_image_encoder, load_text_encoder
    from asif.model.folder import load_model

    model = load_model(args.model)
    model.attach_encoders(
        load_image_encoder(args.image_encoder or model.image_encoder_name),
        load_text_encoder(args.text_encoder or model.text_encoder_name),
    )
    if args.k:
        model.k = args.k
    return model


def cmd_demo(args: argparse.Namespace) -> None:
    from asif.demo import run_demo

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
    model = _load(args)
    pred = model.classify(
        args.images, args.labels, args.templates, args.strategy, args.threshold, progress=True
    )
    top = pred.topk(args.top)
    rows = [
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
    model = _load(args)
    print(
        model.explain(args.image, args.labels, args.templates, args.strategy, args.label, args.top)
    )


def cmd_info(args: argparse.Namespace) -> None:
    from asif.model.folder import read_settings

    print(json.dumps(read_settings(args.model), indent=2))


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, help="saved model folder made by asif demo")
    p.add_argument("--labels", type=_labels, required=True, help="comma-separated class names")
    p.add_argument(
        "--template",
        dest="templates",
        action="append",
        help=f"prompt with {{}} for the class; repeatable (default {DEFAULT_TEMPLATES[0]!r})",
    )
    p.add_argument("--strategy", choices=STRATEGIES, default="max")
    p.add_argument("--k", type=int, help="override the model's k")
    p.add_argument("--image-encoder", help="image encoder spec, if not the one the model names")
    p.add_argument("--text-encoder", help="text encoder spec, if not the one the model names")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asif", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="build anchors from labelled images, classify held-out ones")
    p.add_argument("--output", default=DEFAULT_MODEL, help="where to save the model")
    p.add_argument(
        "--pairs-dir",
        default="asif-data/demo-pairs",
        help="where to write the anchor pairs as captioned images (input of build-anchors)",
    )
    p.add_argument("--anchors-per-class", type=int, default=100)
    p.add_argument("--test-per-class", type=int, default=50)
    p.add_argument("--image-encoder", default="efficientnet-lite2")
    p.add_argument("--k", type=int, default=50)
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
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.set_defaults(run=cmd_info)

    from asif.serve.cli import add_serve_parser

    add_serve_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "templates", None) is None and "templates" in args:
        args.templates = list(DEFAULT_TEMPLATES)
    try:
        args.run(args)
    except (AsifError, FileExistsError, FileNotFoundError, KeyError, ValueError) as exc:
        print(f"asif {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
