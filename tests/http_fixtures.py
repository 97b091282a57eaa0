"""A local HTTP server on 127.0.0.1 serving generated image-caption pairs, good and bad.

Test modules build a server with `ImageServer(generate_pairs(...))` (a context manager), write
the url list with `write_url_list`, and know from `Pair.kind` which urls must succeed.
"""

from __future__ import annotations

import io
import random
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

GOOD_KINDS = ("jpeg", "png")
BAD_KINDS = ("missing", "html", "truncated")
COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white", "grey", "cyan"]
SHAPES = ["circle", "square", "triangle", "stripes"]


@dataclass(frozen=True)
class Pair:
    """One served item: its path on the server, caption, kind and (for images) expected size."""

    path: str
    caption: str
    kind: str
    size: tuple[int, int] | None = None

    @property
    def ok(self) -> bool:
        """Whether a downloader must succeed on this item."""
        return self.kind in GOOD_KINDS


def make_image(seed: int, size: tuple[int, int] = (96, 72), fmt: str = "JPEG") -> bytes:
    """A deterministic picture: a coloured shape on a coloured background, encoded as `fmt`."""
    rng = random.Random(seed)
    background, colour = rng.sample(COLOURS, 2)
    shape = SHAPES[seed % len(SHAPES)]
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    w, h = size
    box = (w // 5, h // 5, 4 * w // 5, 4 * h // 5)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        corners = [(w // 2, h // 6), (w // 6, 5 * h // 6), (5 * w // 6, 5 * h // 6)]
        draw.polygon(corners, fill=colour)
    else:
        for x in range(0, w, max(w // 8, 2)):
            draw.rectangle((x, 0, x + max(w // 16, 1), h), fill=colour)
    out = io.BytesIO()
    image.save(out, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def caption_of(seed: int) -> str:
    """The caption that matches `make_image(seed)`."""
    rng = random.Random(seed)
    background, colour = rng.sample(COLOURS, 2)
    return f"a {colour} {SHAPES[seed % len(SHAPES)]} on a {background} background #{seed}"


def generate_pairs(
    n_good: int, *, n_missing: int = 0, n_html: int = 0, n_truncated: int = 0, start: int = 0
) -> list[tuple[Pair, bytes]]:
    """`n_good` JPEG/PNG images of varied sizes, then the bad items, each with its payload."""
    items: list[tuple[Pair, bytes]] = []
    for seed in range(start, start + n_good):
        size = (48 + (seed * 37) % 200, 40 + (seed * 53) % 160)
        fmt, ext = ("PNG", "png") if seed % 3 == 0 else ("JPEG", "jpg")
        pair = Pair(f"/img/{seed}.{ext}", caption_of(seed), fmt.lower(), size)
        items.append((pair, make_image(seed, size, fmt)))
    bad = [("missing", n_missing), ("html", n_html), ("truncated", n_truncated)]
    for kind, count in bad:
        for _ in range(count):
            seed = start + 10_000 + len(items)
            payload = b"" if kind == "missing" else b"<html><body>not an image</body></html>"
            if kind == "truncated":
                payload = make_image(seed, (120, 90))[:200]
            pair = Pair(f"/{kind}/{seed}.jpg", f"a broken {kind} item #{seed}", kind)
            items.append((pair, payload))
    return items


class ImageServer:
    """A threaded HTTP server on 127.0.0.1 (free port) serving the given items until closed."""

    def __init__(self, items: Iterable[tuple[Pair, bytes]] = ()) -> None:
        self.routes: dict[str, tuple[Pair, bytes]] = {}
        self.hits: dict[str, int] = {}
        self.delay = 0.0
        """Seconds each response waits (to slow a download down)."""
        self.add(items)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                path = self.path.split("?")[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                time.sleep(server.delay)
                pair, payload = server.routes.get(path, (None, b""))
                if pair is None or pair.kind == "missing":
                    self.send_error(404)
                    return
                content_type = "image/png" if pair.kind == "png" else "image/jpeg"
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def add(self, items: Iterable[tuple[Pair, bytes]]) -> None:
        """Serve more items."""
        for pair, payload in items:
            self.routes[pair.path] = (pair, payload)

    def url(self, pair: Pair) -> str:
        """The full url of a served item."""
        return self.base_url + pair.path

    def __enter__(self) -> ImageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def write_url_list(
    server: ImageServer,
    pairs: Sequence[Pair],
    path: str | Path,
    *,
    url_col: str = "url",
    caption_col: str = "caption",
) -> Path:
    """Write (url, caption) rows as parquet, csv or tsv (plain lines: a TSV is read without
    quote processing), chosen by `path`'s suffix; each with a header."""
    path = Path(path)
    table = pa.table(
        {url_col: [server.url(p) for p in pairs], caption_col: [p.caption for p in pairs]}
    )
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    elif path.suffix == ".tsv":
        rows = zip(*table.to_pydict().values(), strict=True)
        lines = [f"{url_col}\t{caption_col}", *(f"{u}\t{c}" for u, c in rows)]
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    else:
        pacsv.write_csv(table, path)
    return path


def write_image_folder(
    folder: str | Path, n: int, *, start: int = 0, n_uncaptioned: int = 0, n_corrupt: int = 0
) -> Path:
    """`n` captioned images (JPEG/PNG, some in a subfolder), then images without a `.txt`, then
    captioned files that are not images: the input of `asif.pipeline.folders.pairs_from_folder`."""
    root = Path(folder)
    (root / "sub").mkdir(parents=True, exist_ok=True)
    for seed in range(start, start + n):
        fmt, ext = ("PNG", "png") if seed % 3 == 0 else ("JPEG", "jpg")
        stem = root / ("sub" if seed % 4 == 3 else "") / f"img{seed}"
        stem.with_suffix(f".{ext}").write_bytes(make_image(seed, (64 + seed % 50, 64), fmt))
        stem.with_suffix(".txt").write_text(caption_of(seed), encoding="utf-8")
    for i in range(n_uncaptioned):
        (root / f"uncaptioned{i}.jpg").write_bytes(make_image(1000 + i))
    for i in range(n_corrupt):
        (root / f"corrupt{i}.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
        (root / f"corrupt{i}.txt").write_text(f"a corrupt file #{i}", encoding="utf-8")
    return root
