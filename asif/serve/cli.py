"""`asif serve`: the query service over an anchor table, following its new versions."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from asif.model.settings import DEFAULT_K, DEFAULT_P
from asif.scan.lance_index import INDEX_KINDS, SearchSettings
from asif.scan.matrix import PRECISIONS
from asif.serve.access import TOKEN_ENV, Access, check_bind
from asif.serve.batching import BatchSettings
from asif.serve.dependencies import ServiceSettings


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `serve` command to the `asif` CLI's subparsers."""
    p = subparsers.add_parser(
        "serve", help="HTTP query service over an anchor table (follows new versions)"
    )
    p.add_argument("--table", required=True, help="LanceDB URI (folder or s3://...)")
    p.add_argument("--name", default="anchors", help="table name")
    pin = p.add_mutually_exclusive_group()
    pin.add_argument("--version", type=int, help="serve this version, never move")
    pin.add_argument("--tag", help="serve the version this tag names, never move")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--precision", choices=PRECISIONS, default="float32")
    p.add_argument("--k", type=int, default=DEFAULT_K)
    p.add_argument("--p", type=float, default=DEFAULT_P)
    p.add_argument(
        "--watch-interval", type=float, default=1.0, help="seconds between version checks"
    )
    defaults = ServiceSettings()
    p.add_argument(
        "--max-upload-bytes", type=int, default=defaults.max_upload_bytes, help="largest image file"
    )
    p.add_argument(
        "--max-pixels", type=int, default=defaults.max_pixels,
        help="pixels an image may decode to (larger JPEGs are decoded reduced, others refused)",
    )  # fmt: skip
    p.add_argument("--max-labels", type=int, default=defaults.max_labels, help="labels per request")
    p.add_argument(
        "--max-templates", type=int, default=defaults.max_templates, help="templates per request"
    )
    p.add_argument(
        "--max-text-chars", type=int, default=defaults.max_text_chars,
        help="characters per label, template, caption or query text",
    )  # fmt: skip
    p.add_argument(
        "--max-batch", type=int, default=defaults.batching.max_batch,
        help="images encoded together at most (1: no micro-batching)",
    )  # fmt: skip
    p.add_argument(
        "--batch-wait-ms", type=float, default=defaults.batching.batch_wait * 1000,
        help="how long the first image of a batch waits for others",
    )  # fmt: skip
    p.add_argument(
        "--token", default=os.environ.get(TOKEN_ENV),
        help=f"bearer token every endpoint but /health requires (default: ${TOKEN_ENV})",
    )  # fmt: skip
    p.add_argument(
        "--allow-unauthenticated", action="store_true",
        help="serve beyond loopback without a token",
    )  # fmt: skip
    p.add_argument(
        "--cors-origin", action="append", default=[], dest="cors_origins",
        help="an origin browsers may call from (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--cache-dir",
        help="memory-map the anchors from an .npy cache of the served version kept here",
    )
    p.add_argument(
        "--approximate",
        action="store_true",
        help="top-k from the table's vector indexes instead of an exact scan in memory",
    )
    p.add_argument(
        "--build-index",
        choices=INDEX_KINDS,
        help="with --approximate: build this index on both embedding columns first",
    )
    p.add_argument(
        "--nprobes", type=int, default=SearchSettings.nprobes, help="IVF partitions searched"
    )
    p.add_argument("--image-encoder", help="image encoder spec, if not the table's")
    p.add_argument("--text-encoder", help="text encoder spec, if not the table's")
    p.set_defaults(run=cmd_serve)
    return p


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from asif.encoders import load_image_encoder, load_text_encoder
    from asif.scan.lance_index import build_indexes
    from asif.serve.app import create_app
    from asif.serve.live_model import LiveModel
    from asif.store.location import TableLocation

    access = Access(args.token, tuple(args.cors_origins))
    check_bind(args.host, access, args.allow_unauthenticated)  # before loading anything
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    location = TableLocation.from_env(args.table, args.name)
    table = location.open()
    if args.build_index:
        build_indexes(table, args.build_index)
    live = LiveModel(
        location.uri,
        location.name,
        storage_options=location.storage_options,
        version=args.tag if args.tag is not None else args.version,
        precision=args.precision,
        k=args.k,
        p=args.p,
        approximate=args.approximate,
        search=SearchSettings(nprobes=args.nprobes),
        image_encoder=load_image_encoder(args.image_encoder or table.image_encoder),
        text_encoder=load_text_encoder(args.text_encoder or table.text_encoder),
        cache_dir=args.cache_dir,
    )
    settings = ServiceSettings(
        max_upload_bytes=args.max_upload_bytes,
        max_pixels=args.max_pixels,
        max_labels=args.max_labels,
        max_templates=args.max_templates,
        max_text_chars=args.max_text_chars,
        batching=BatchSettings(args.max_batch, args.batch_wait_ms / 1000),
    )
    app = create_app(live, watch_interval=args.watch_interval, settings=settings, access=access)
    uvicorn.run(app, host=args.host, port=args.port)
