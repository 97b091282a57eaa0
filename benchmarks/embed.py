"""Embedding throughput: Ray Data (fast path, and float32) against a plain single-process loop.

Generates N image-caption pairs locally (no network) as img2dataset-style parquet shards, then
embeds the same shards in one run and prints pairs per second, end to end once Ray is up:
model loading (in each actor, or once in the loop), reading, decoding, encoding. The plain
loop decodes and encodes in one Python loop in float32 (`EXACT`), as the pipeline did before
the fast path; "plain loop, fast" is the same loop with `FAST` encoder settings (half
precision autocast where the CPU has it, channels_last, a decode thread). The ratio column
compares with the plain loop; its "warm" row leaves the model loading out.

    python benchmarks/embed.py            # 512 pairs, efficientnet-lite0
    python benchmarks/embed.py -n 2000 --lite2 --actors 1
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from asif.encoders.common import EXACT, FAST, EncoderSettings

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white"]
SHAPES = ["circle", "square", "triangle"]


def generated_pairs(n: int, seed: int = 0) -> Iterator[tuple[bytes, str, int, int]]:
    """`n` (JPEG bytes, caption, width, height): a coloured shape on a noisy background."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        w, h = int(rng.integers(256, 400)), 256
        back, fore = rng.choice(COLOURS, 2, replace=False)
        shape = SHAPES[i % len(SHAPES)]
        pixels = rng.integers(0, 40, (h, w, 3), dtype=np.uint8)
        image = Image.blend(Image.new("RGB", (w, h), str(back)), Image.fromarray(pixels), 0.3)
        box = (w // 4, h // 4, 3 * w // 4, 3 * h // 4)
        draw = ImageDraw.Draw(image)
        if shape == "circle":
            draw.ellipse(box, fill=str(fore))
        elif shape == "square":
            draw.rectangle(box, fill=str(fore))
        else:
            draw.polygon(
                [(w // 2, h // 4), (w // 4, 3 * h // 4), (3 * w // 4, 3 * h // 4)], str(fore)
            )
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=90)
        yield out.getvalue(), f"a {fore} {shape} on a {back} background, picture {i}", w, h


def write_shards(folder: Path, n: int, per_shard: int, seed: int = 0) -> list[Path]:
    """`n` generated (JPEG, caption) pairs as parquet shards in img2dataset's column layout."""
    folder.mkdir(parents=True, exist_ok=True)
    pairs = generated_pairs(n, seed)
    shards = []
    for start in range(0, n, per_shard):
        rows: dict[str, list] = {
            k: [] for k in ("url", "caption", "status", "jpg", "original_width", "original_height")
        }
        for i in range(start, min(n, start + per_shard)):
            jpeg, caption, w, h = next(pairs)
            rows["url"].append(f"file:///generated/{i}.jpg")
            rows["caption"].append(caption)
            rows["status"].append("success")
            rows["jpg"].append(jpeg)
            rows["original_width"].append(w)
            rows["original_height"].append(h)
        path = folder / f"{start // per_shard:05d}.parquet"
        pq.write_table(pa.table(rows), path)
        shards.append(path)
    return shards


def plain_loop(
    shards: list[Path],
    image_spec: str,
    text_spec: str,
    batch_size: int,
    settings: EncoderSettings = EXACT,
) -> Iterator[int]:
    """Load both encoders (then yield 0), read, decode and encode each shard in batches; yield
    rows done."""
    from asif.encoders import decode_image, load_image_encoder, load_text_encoder
    from asif.pipeline.embed import read_shard

    image_encoder = load_image_encoder(image_spec, device="cpu", settings=settings)
    text_encoder = load_text_encoder(text_spec, device="cpu", settings=settings)
    yield 0
    for shard in shards:
        for table in read_shard(shard, rows=batch_size):
            images = [decode_image(b) for b in table["image"].to_pylist()]
            image_encoder.encode(images, batch_size=batch_size)
            text_encoder.encode(table["caption"].to_pylist(), batch_size=batch_size)
            yield table.num_rows


def ray_loop(
    shards: list[Path],
    image_spec: str,
    text_spec: str,
    batch_size: int,
    actors: int,
    fast: bool = True,
) -> Iterator[int]:
    """`iter_embedded_batches` with `actors` actors (`fast`: the default encoder settings, else
    float32, NCHW, no decode thread); yield rows per batch."""
    from asif.pipeline.embed import EmbedOptions, iter_embedded_batches

    options = EmbedOptions(
        image_encoder=image_spec,
        text_encoder=text_spec,
        batch_size=batch_size,
        rows_per_batch=batch_size,
        num_actors=actors,
        use_gpu=False,
    )
    if not fast:
        options = replace(options, precision="float32", channels_last=False, decode_threads=0)
    for batch in iter_embedded_batches(shards, options):
        yield batch.table.num_rows


def measure(run: Callable[[], Iterator[int]]) -> tuple[int, float, float]:
    """(rows, seconds in all, seconds after the first (row-less) yield of `run`)."""
    start = time.perf_counter()
    first, rows = None, 0
    for n in run():
        rows += n
        first = first or time.perf_counter()
    end = time.perf_counter()
    return rows, end - start, end - (first or start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--pairs", type=int, default=512, help="pairs to embed (512)")
    parser.add_argument("--lite2", action="store_true", help="efficientnet-lite2 (default lite0)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--per-shard", type=int, default=128, help="pairs per shard (128)")
    parser.add_argument("--actors", default="1,2", help="actor counts to try (1,2)")
    parser.add_argument("--no-float32-ray", action="store_true", help="skip Ray in float32")
    args = parser.parse_args()
    image_spec = "efficientnet-lite2" if args.lite2 else "efficientnet-lite0"
    text_spec = "all-MiniLM-L6-v2"

    import ray

    from asif.pipeline.embed import init_ray

    with tempfile.TemporaryDirectory(prefix="asif-bench-") as tmp:
        shards = write_shards(Path(tmp), args.pairs, args.per_shard)
        print(f"{args.pairs} pairs in {len(shards)} shards; {image_spec} + {text_spec}, CPU")
        init_ray()
        plain = measure(lambda: plain_loop(shards, image_spec, text_spec, args.batch_size))
        results = {"plain loop": plain[:2], "plain loop, warm": (plain[0], plain[2])}
        fast = measure(lambda: plain_loop(shards, image_spec, text_spec, args.batch_size, FAST))
        results["plain loop, fast"] = fast[:2]
        results["plain loop, fast, warm"] = (fast[0], fast[2])
        runs = [(int(a), True) for a in args.actors.split(",")]
        runs += [] if args.no_float32_ray else [(1, False)]
        for actors, fast_path in runs:
            name = f"ray, {actors} actor{'s' * (actors > 1)}{'' if fast_path else ', float32'}"
            run = partial(
                ray_loop, shards, image_spec, text_spec, args.batch_size, actors, fast_path
            )
            results[name] = measure(run)[:2]
        ray.shutdown()

    base = plain[0] / plain[1]
    print(f"\n{'mode':<23} {'pairs':>6} {'seconds':>8} {'pairs/s':>8} {'x plain':>8}")
    for mode, (rows, seconds) in results.items():
        rate = rows / seconds
        print(f"{mode:<23} {rows:>6} {seconds:>8.1f} {rate:>8.1f} {rate / base:>8.2f}")


if __name__ == "__main__":
    main()
