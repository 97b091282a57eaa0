"""The `asif` command line: run the demo, classify and explain images with a saved model, build
an anchor table from a url list.

Input the library refuses (templates, strategy, labels, settings, images, model folders) is an
`AsifError`; `main` turns it, and missing or clashing files, into one line on stderr and exit
status 2, so the commands check nothing themselves.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import types
import typing
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

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
    if args.pipeline:
        from flows.demo import run_pipeline_demo

        print(
            run_pipeline_demo(
                args.table, args.pairs_dir, args.image_encoder,
                anchors_per_class=args.anchors_per_class,
                test_per_class=args.test_per_class,
            ).report()
        )  # fmt: skip
        return
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


def cmd_build_anchors(args: argparse.Namespace) -> None:
    from asif.pipeline.progress import TerminalProgress
    from asif.pipeline.summary import summary_text

    options = {}
    for name, cls in _option_classes().items():
        try:
            options[name] = cls(**{f.name: getattr(args, f.name) for f in _given(args, cls)})
        except ValueError as exc:
            args.parser.error(str(exc))
    # Prefect's console lines (the temporary server starting and stopping) are not this
    # command's output; its run's logs are on the server
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    from flows.build_anchors import run_here  # Prefect's import takes seconds: after the checks

    try:
        with _signals_end_the_command():
            summary = run_here(
                (TerminalProgress(),),
                url_list=args.url_list,
                table_uri=args.table,
                table_name=args.table_name,
                work_dir=args.work_dir,
                quarantine_dir=args.quarantine_dir,
                tag=args.tag,
                progress_seconds=args.progress_every,
                **options,
            )
    except KeyboardInterrupt:
        print("asif build-anchors: interrupted; the same command resumes", file=sys.stderr)
        raise SystemExit(130) from None
    print(json.dumps(summary.as_dict(), indent=2) if args.json else summary_text(summary), end="")


def _option_classes() -> dict[str, type]:
    """The option objects of the build, by `build_anchor_table` parameter (as in the flow)."""
    from asif.pipeline.download import DownloadOptions
    from asif.pipeline.embed import EmbedOptions
    from asif.pipeline.url_list import UrlListOptions

    return {"source": UrlListOptions, "download": DownloadOptions, "embed": EmbedOptions}


def _given(args: argparse.Namespace, cls: type) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if hasattr(args, f.name)]


@contextmanager
def _signals_end_the_command() -> Iterator[None]:
    """SIGTERM and SIGHUP end the command as Ctrl-C does, through every `finally` (shutting
    down its Ray session, releasing its work folder); by default they end it on the spot."""

    def end(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = {s: signal.signal(s, end) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


_NOT_SET = {"limit": "all rows", "sample": "none", "fraction": "none", "stop": "the last row"}
"""What an option left at None means, where it is not "chosen automatically"."""


def _add_dataclass_options(p: argparse.ArgumentParser, cls: type, title: str) -> None:
    """One option per field of `cls` (``--rows-per-batch`` for `rows_per_batch`), typed from
    its annotation; left out, an option keeps the field's default (the dataclass's)."""
    group = p.add_argument_group(title)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        union = typing.get_origin(kind) in (typing.Union, types.UnionType)
        kinds = [k for k in typing.get_args(kind) if k is not type(None)] if union else [kind]
        spec: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS}
        if bool in kinds:
            spec["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kinds[0]) is Literal:
            spec["choices"] = typing.get_args(kinds[0])
        elif set(kinds) == {str, int}:  # a column: a name, or a position
            spec["type"] = lambda text: int(text) if text.isdigit() else text
        else:
            spec["type"] = kinds[0]
        unset = _NOT_SET.get(f.name, "auto")
        spec["help"] = f"default: {unset if f.default is None else f.default}"
        group.add_argument("--" + f.name.replace("_", "-"), **spec)


def _build_anchors_options(p: argparse.ArgumentParser) -> None:
    from asif.pipeline.build import DEFAULT_TABLE_URI
    from asif.pipeline.progress import INTERVAL

    p.add_argument("url_list", help="parquet/csv/tsv of (url, caption), or a folder of images")
    p.add_argument("--table", default=DEFAULT_TABLE_URI, help="LanceDB folder or s3:// uri")
    p.add_argument("--table-name", default="anchors")
    p.add_argument("--work-dir", help="downloaded shards (default asif-data/work/TABLE_NAME)")
    p.add_argument("--quarantine-dir", help="default asif-data/quarantine/TABLE_NAME")
    p.add_argument("--tag", help="tag of the new version (default build-<UTC timestamp>)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--progress-every", type=float, default=INTERVAL, metavar="SECONDS", help="default: 5"
    )
    titles = {"source": "url list", "download": "download (img2dataset)", "embed": "embed"}
    for name, cls in _option_classes().items():
        _add_dataclass_options(p, cls, titles[name])


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
    p.add_argument(
        "--pipeline", action="store_true",
        help="the main job instead: the pairs through build-anchors into a LanceDB table "
        "(served from 127.0.0.1), then evaluated",
    )  # fmt: skip
    p.add_argument("--table", default="asif-data/lancedb", help="with --pipeline")
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

    p = sub.add_parser(
        "build-anchors",
        help="build or grow an anchor table from a url list (the build-anchors flow)",
        description="Download, embed, validate and commit a url list's pairs into an anchor "
        "table, showing progress; rerun the same command to resume. Runs the build-anchors "
        "flow here: on the Prefect server of PREFECT_API_URL, else on a temporary local one. "
        "See docs/build-anchors.md.",
    )
    _build_anchors_options(p)
    # a ValueError is bad input here too (e.g. a work folder of other shards)
    p.set_defaults(run=cmd_build_anchors, parser=p, input_errors=(ValueError,))

    from asif.evaluation.cli import add_evaluate_parser
    from asif.serve.cli import add_serve_parser

    add_evaluate_parser(sub)
    add_serve_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; 0 on success, 2 (argparse's status for bad usage) on bad input."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (AsifError, OSError, *getattr(args, "input_errors", ())) as exc:
        print(f"asif {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
