"""build-anchors end to end against a plain embedding loop over the same downloaded shards.

Generates N JPEG pairs (`embed.generated_pairs`, 256 px high), serves them from a 127.0.0.1
HTTP server and lists them as CC12M ships its file (url TAB caption, no header), with 10% of
the urls pointing at images the server does not have (404). Then, in one run:

1. the pipeline: `build_anchor_table` into a new table (img2dataset download, Ray actors
   embedding with the default fast path, Great Expectations validation, LanceDB commits while
   the embedding goes on); stage times from its `BuildSummary`;
2. a plain loop over the shards the pipeline downloaded: read, decode and encode in one Python
   loop in float32 (`EXACT`, the pipeline's embedding before the fast path), committing
   nothing;
3. the same loop with the fast encoder settings (`FAST`).

Pairs/s count the pairs that were embedded; model loading is inside every figure. The ratio
column compares with the plain float32 loop. Targets on a 2-core machine: the pipeline's
embedding at least 1.5x the plain loop, and the whole pipeline (download included) at least
0.8x.

    python benchmarks/pipeline.py                  # 5,000 urls, efficientnet-lite2 + MiniLM
    python benchmarks/pipeline.py -n 1000 --image-encoder efficientnet-lite0
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from embed import generated_pairs, measure, plain_loop

from asif.encoders.common import EXACT, FAST
from asif.pipeline.build import build_anchor_table
from asif.pipeline.download import DownloadOptions, collect_stats
from asif.pipeline.embed import EmbedOptions
from asif.pipeline.loopback import serve_folder
from asif.pipeline.summary import BuildSummary
from asif.pipeline.url_list import UrlListOptions
from asif.store.location import TableLocation

BAD_EVERY = 10
"""One url in this many names an image the server does not have."""


@dataclass(frozen=True)
class Row:
    """One line of the table: what ran, pairs, seconds."""

    name: str
    pairs: int
    seconds: float

    def cells(self, base: float) -> str:
        rate = self.pairs / self.seconds if self.seconds else 0.0
        ratio = f"{rate / base:.2f}" if base else "-"
        return f"{self.name:<38} {self.pairs:>6} {self.seconds:>8.1f} {rate:>8.1f} {ratio:>8}"


def write_url_list(folder: Path, base_url: str, n: int, seed: int = 0) -> tuple[Path, int]:
    """`n` urls (every `BAD_EVERY`-th one missing on the server) in a headerless TSV, the good
    ones' images written to `folder`; returns the list and the number of good urls."""
    lines, good = [], 0
    for i, (jpeg, caption, _, _) in enumerate(generated_pairs(n, seed)):
        name = f"{i:06d}.jpg"
        if i % BAD_EVERY == BAD_EVERY - 1:
            name = f"missing-{name}"
        else:
            (folder / name).write_bytes(jpeg)
            good += 1
        lines.append(f"{base_url}/{name}\t{caption}\n")
    url_list = folder.parent / "urls.tsv"
    url_list.write_text("".join(lines), encoding="utf-8")
    return url_list, good


def run_pipeline(url_list: Path, root: Path, options: EmbedOptions) -> BuildSummary:
    """One build of a new table under `root` from the headerless url list."""
    return build_anchor_table(
        url_list,
        TableLocation(str(root / "lancedb")),
        work_dir=root / "work",
        quarantine_dir=root / "quarantine",
        source=UrlListOptions(header=False, url_col=0, caption_col=1),
        download=DownloadOptions(threads=32),
        embed=options,
    )


def pipeline_rows(summary: BuildSummary) -> list[Row]:
    t = summary.totals
    total = summary.download_seconds + summary.embed_seconds
    return [
        Row("pipeline, end to end", t.embedded, total),
        Row("  download (img2dataset)", summary.new_downloaded, summary.download_seconds),
        Row("  embed, validate and commit (Ray)", t.embedded, summary.embed_seconds),
        Row("    of which validating", t.validated_rows, t.validate_seconds),
        Row("    of which writing to LanceDB", t.validated_rows, t.write_seconds),
    ]


def loop_row(name: str, run: Callable[[], Iterator[int]]) -> Row:
    rows, seconds, _ = measure(run)
    return Row(name, rows, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--urls", type=int, default=5000, help="urls listed (5000)")
    parser.add_argument("--image-encoder", default=EmbedOptions.image_encoder)
    parser.add_argument("--text-encoder", default=EmbedOptions.text_encoder)
    parser.add_argument("--batch-size", type=int, default=EmbedOptions.batch_size)
    args = parser.parse_args()
    options = EmbedOptions(
        image_encoder=args.image_encoder,
        text_encoder=args.text_encoder,
        batch_size=args.batch_size,
    )

    with tempfile.TemporaryDirectory(prefix="asif-bench-pipeline-") as tmp:
        root = Path(tmp)
        images = root / "images"
        images.mkdir()
        with serve_folder(images) as base_url:
            url_list, good = write_url_list(images, base_url, args.urls)
            print(
                f"{args.urls} urls ({good} good, {args.urls - good} missing), "
                f"{args.image_encoder} + {args.text_encoder}, batch {args.batch_size}, CPU"
            )
            start = time.perf_counter()
            summary = run_pipeline(url_list, root, options)
            print(f"pipeline done in {time.perf_counter() - start:.1f} s")
        shards = [s.path for s in collect_stats(root / "work").shards]
        spec = (args.image_encoder, args.text_encoder, args.batch_size)
        plain = loop_row("plain loop, float32", lambda: plain_loop(shards, *spec, EXACT))
        fast = loop_row("plain loop, fast path", lambda: plain_loop(shards, *spec, FAST))

    assert summary.totals.embedded == good == plain.pairs, (summary.totals, good, plain)
    rows = [*pipeline_rows(summary), plain, fast]
    base = plain.pairs / plain.seconds
    print(f"\n{'run':<38} {'pairs':>6} {'seconds':>8} {'pairs/s':>8} {'x plain':>8}")
    for row in rows:
        print(row.cells(base))


if __name__ == "__main__":
    main()
