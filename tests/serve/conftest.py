"""A small real anchor table (efficientnet-lite0 + all-MiniLM-L6-v2) and a real server on it."""

from __future__ import annotations

import io
import socket
import threading
import time

import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from asif.serve.app import create_app
from asif.serve.dependencies import ServiceSettings
from asif.serve.live_model import LiveModel
from asif.store.batch import build_anchor_batch
from asif.store.table import AnchorTable
from asif.store.thumbnails import make_thumbnail

COLORS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (30, 60, 220)}
SHAPES = ("circle", "square", "triangle")


def shape_image(color: str, shape: str, seed: int = 0) -> Image.Image:
    """A coloured shape on a light background, jittered by `seed`."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (96, 96), tuple(int(v) for v in 235 - rng.integers(0, 20, 3)))
    draw = ImageDraw.Draw(img)
    x, y = rng.integers(10, 25, 2)
    s = int(rng.integers(50, 65))
    box = (int(x), int(y), int(x) + s, int(y) + s)
    if shape == "circle":
        draw.ellipse(box, fill=COLORS[color])
    elif shape == "square":
        draw.rectangle(box, fill=COLORS[color])
    else:
        draw.polygon([(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) // 2, box[1])],
                     fill=COLORS[color])  # fmt: skip
    return img


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def encoders():
    from asif.encoders import load_image_encoder, load_text_encoder

    return load_image_encoder("efficientnet-lite0"), load_text_encoder("all-MiniLM-L6-v2")


def anchor_batch(encoders, items: list[tuple[str, str, int]], thumbnails: bool = True):
    """Rows for (color, shape, seed) items, embedded with the real encoders, with thumbnails
    as build-anchors makes them (or none)."""
    image_encoder, text_encoder = encoders
    images = [shape_image(c, s, seed) for c, s, seed in items]
    captions = [f"a {c} {s}" for c, s, _ in items]
    return build_anchor_batch(
        urls=[f"http://127.0.0.1/{c}-{s}-{seed}.png" for c, s, seed in items],
        captions=captions,
        widths=[96] * len(items),
        heights=[96] * len(items),
        image_embeddings=image_encoder.encode(images),
        text_embeddings=text_encoder.encode(captions),
        image_encoder=image_encoder.name,
        text_encoder=text_encoder.name,
        thumbnails=[make_thumbnail(i) for i in images] if thumbnails else None,
    )


@pytest.fixture(scope="session")
def shape_rows(encoders):
    """27 embedded anchor rows: 3 colours x 3 shapes x 3 jitters."""
    return anchor_batch(
        encoders, [(c, s, seed) for c in COLORS for s in SHAPES for seed in range(3)]
    )


@pytest.fixture
def shape_table(tmp_path, encoders, shape_rows) -> AnchorTable:
    """A fresh anchor table holding `shape_rows`."""
    image_encoder, text_encoder = encoders
    table = AnchorTable.create_or_open(
        str(tmp_path / "db"),
        image_encoder=image_encoder.name,
        text_encoder=text_encoder.name,
        image_dim=image_encoder.dim,
        text_dim=text_encoder.dim,
    )
    table.upsert(shape_rows)
    return table


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningServer:
    """uvicorn serving an app on 127.0.0.1 in a thread."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def serve(encoders):
    """serve(table, **LiveModel options) -> a running server over the table."""
    started: list[RunningServer] = []

    def run(table: AnchorTable, *, watch_interval=0.2, max_upload_bytes=200_000, **options):
        live = LiveModel(table.uri, image_encoder=encoders[0], text_encoder=encoders[1], **options)
        app = create_app(
            live,
            watch_interval=watch_interval,
            settings=ServiceSettings(max_upload_bytes=max_upload_bytes),
        )
        server = RunningServer(app).__enter__()
        started.append(server)
        return server

    yield run
    for server in started:
        server.__exit__()


@pytest.fixture
def client(shape_table, encoders):
    """A TestClient over the service on `shape_table` (k=10, not following the table)."""
    live = LiveModel(shape_table.uri, image_encoder=encoders[0], text_encoder=encoders[1], k=10)
    with TestClient(
        create_app(live, watch_interval=None, settings=ServiceSettings(max_upload_bytes=200_000))
    ) as c:
        yield c


@pytest.fixture
def red_circle_png() -> bytes:
    return png(shape_image("red", "circle", seed=11))
