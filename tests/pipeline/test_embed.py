"""embed step: downloaded + local shards through Ray Data -> anchor rows, checked against the
encoders called directly on the same image bytes; batches committed as they come; a local Ray
that does not outlive a SIGKILLed driver."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from PIL import Image

from asif.pipeline.commit import commit_batch
from asif.pipeline.download import DownloadOptions, download_pairs
from asif.pipeline.embed import (
    PAIR_SCHEMA,
    EmbedOptions,
    commit_groups,
    init_ray,
    iter_embedded_batches,
    read_shard,
    reap_with_this_process,
)
from asif.pipeline.folders import pairs_from_folder
from asif.store.ids import anchor_id
from asif.store.schema import anchor_columns
from asif.store.table import AnchorTable
from tests.http_fixtures import (
    ImageServer,
    caption_of,
    generate_pairs,
    make_image,
    write_image_folder,
    write_url_list,
)

REPO = Path(__file__).resolve().parents[2]
IMAGE_ENCODER = "efficientnet-lite0"
TEXT_ENCODER = "all-MiniLM-L6-v2"
ROWS_PER_BATCH = 4
OPTIONS = {"image_encoder": IMAGE_ENCODER, "text_encoder": TEXT_ENCODER, "batch_size": 4}


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Parquet shards from a download, webdataset shards from a folder, one corrupted shard;
    and the source size of each good url (img2dataset resized the copies to 256 px)."""
    tmp = tmp_path_factory.mktemp("embed")
    items = generate_pairs(8, n_missing=1, n_html=1)
    with ImageServer(items) as server:
        url_list = write_url_list(server, [p for p, _ in items], tmp / "urls.parquet")
        options = DownloadOptions(samples_per_shard=6, threads=4)
        downloaded = download_pairs(url_list, tmp / "dl", options)
        sizes = {server.url(p): p.size for p, _ in items if p.ok}
    folder = write_image_folder(tmp / "images", 3, start=50)
    local = pairs_from_folder(folder, tmp / "local", DownloadOptions(output_format="webdataset"))
    for path in folder.rglob("img*"):
        if path.suffix != ".txt":
            sizes[path.resolve().as_uri()] = Image.open(path).size

    good = pq.read_table(downloaded.shard_files[0]).slice(0, 2)
    corrupt = pa.table(
        {
            "url": ["http://example.invalid/garbage.jpg", "http://example.invalid/truncated.jpg"],
            "caption": ["garbage bytes", "a truncated jpeg"],
            "status": ["success", "success"],
            "jpg": [b"\xff\xd8garbage", good["jpg"][0].as_py()[:300]],
        }
    )
    (tmp / "bad").mkdir()
    pq.write_table(corrupt, tmp / "bad" / "corrupt.parquet")
    files = [*downloaded.shard_files, *local.shard_files, tmp / "bad" / "corrupt.parquet"]
    return files, downloaded.succeeded + local.succeeded, sizes


@pytest.fixture(scope="module")
def ray_session():
    import ray

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = not ray.is_initialized()
    init_ray()
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def embedded(shards, ray_session):
    files, _, _ = shards
    options = EmbedOptions(**OPTIONS, rows_per_batch=ROWS_PER_BATCH)
    return list(iter_embedded_batches(files, options))


def _source_rows(files) -> dict[str, tuple[str, bytes]]:
    """url -> (caption, image bytes) of every shard row that has an image."""
    rows = {}
    for path in files:
        if path.suffix == ".tar":
            with tarfile.open(path) as tar:
                members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
            for name, data in members.items():
                if name.endswith(".json"):
                    meta = json.loads(data)
                    rows[meta["url"]] = (meta["caption"], members[name[:-5] + ".jpg"])
        else:
            table = pq.read_table(path)
            for row in table.filter(pc.is_valid(table["jpg"])).to_pylist():
                rows[row["url"]] = (row["caption"], row["jpg"])
    return rows


def test_batches_are_bounded_and_in_the_anchor_schema(embedded):
    schema = anchor_columns(1280, 384)
    assert all(b.table.schema.equals(schema, check_metadata=True) for b in embedded)
    assert all(b.table.num_rows + b.failed.num_rows <= ROWS_PER_BATCH for b in embedded)
    assert len(embedded) > 1


def test_rows_match_the_shards_and_the_encoders(embedded, shards):
    """The fast path (the default options) against float32 encoders called directly."""
    from asif.encoders import load_image_encoder, load_text_encoder

    files, succeeded, sizes = shards
    table = pa.concat_tables(b.table for b in embedded)
    assert table.num_rows == succeeded == 11
    source = _source_rows(files[:-1])
    urls = table["url"].to_pylist()
    assert sorted(urls) == sorted(source)
    captions = table["caption"].to_pylist()
    assert captions == [source[u][0] for u in urls]
    assert table["id"].to_pylist() == [anchor_id(u, c) for u, c in zip(urls, captions, strict=True)]
    names = {f.name for f in files}
    assert set(table["shard"].to_pylist()) <= names
    assert {s.endswith(".tar") for s in table["shard"].to_pylist()} == {True, False}

    image_emb = np.stack(table["image_embedding"].to_numpy(zero_copy_only=False))
    text_emb = np.stack(table["text_embedding"].to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(np.linalg.norm(image_emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(text_emb, axis=1), 1.0, atol=1e-5)
    direct_image = load_image_encoder(IMAGE_ENCODER, "cpu").encode([source[u][1] for u in urls])
    direct_text = load_text_encoder(TEXT_ENCODER, "cpu").encode(captions)
    assert np.sum(image_emb * direct_image, axis=1).min() >= 0.999
    assert np.sum(text_emb * direct_text, axis=1).min() >= 0.999


def test_sizes_are_the_source_images_not_the_resized_copies(embedded, shards):
    _, _, sizes = shards
    table = pa.concat_tables(b.table for b in embedded)
    widths, heights = table["width"].to_pylist(), table["height"].to_pylist()
    got = dict(zip(table["url"].to_pylist(), zip(widths, heights, strict=True), strict=True))
    assert got == sizes
    assert any(min(size) < 200 for size in sizes.values())  # img2dataset made these >= 256


def test_every_row_keeps_a_thumbnail_of_its_image(embedded, shards):
    """Issue 17, item 1: a WebP of at most 128 px a side, the shard's image shrunk."""
    files, _, _ = shards
    table = pa.concat_tables(b.table for b in embedded)
    source = _source_rows(files[:-1])
    for url, data in zip(table["url"].to_pylist(), table["thumbnail"].to_pylist(), strict=True):
        thumb = Image.open(io.BytesIO(data))
        original = Image.open(io.BytesIO(source[url][1])).convert("RGB")
        assert thumb.format == "WEBP" and max(thumb.size) == min(128, max(original.size))
        assert len(data) < 16_000
        shrunk = np.asarray(original.resize(thumb.size), dtype=float)
        assert np.abs(np.asarray(thumb.convert("RGB"), dtype=float) - shrunk).mean() < 12


def test_no_thumbnails_when_their_side_is_zero(shards, ray_session):
    files, _, _ = shards
    options = EmbedOptions(**OPTIONS, thumbnail_side=0)
    [batch] = list(iter_embedded_batches(files[:1], options))
    assert batch.table.num_rows and batch.table["thumbnail"].null_count == batch.table.num_rows


def test_undecodable_images_are_dropped_and_reported(embedded):
    failed = pa.concat_tables(b.failed for b in embedded)
    assert sorted(failed["url"].to_pylist()) == [
        "http://example.invalid/garbage.jpg",
        "http://example.invalid/truncated.jpg",
    ]
    assert set(failed["shard"].to_pylist()) == {"corrupt.parquet"}
    assert all("cannot decode" in e for e in failed["error"].to_pylist())


def test_batches_are_committed_while_the_embedding_goes_on(shards, ray_session, tmp_path):
    """rows_per_batch far above the rows: commit_seconds=0 commits each actor batch as it
    arrives, so the first commit comes before the last batch is embedded."""
    files, succeeded, _ = shards
    table = AnchorTable.create_or_open(
        str(tmp_path / "db"),
        image_encoder=IMAGE_ENCODER,
        text_encoder=TEXT_ENCODER,
        image_dim=1280,
        text_dim=384,
    )
    arrived: list[float] = []
    commits: list[tuple[float, int]] = []
    options = EmbedOptions(**OPTIONS, rows_per_batch=10_000, commit_seconds=0)
    for batch in iter_embedded_batches(
        files, options, on_block=lambda b: arrived.append(time.monotonic())
    ):
        result = commit_batch(table, batch.table, quarantine_dir=tmp_path / "quarantine")
        commits.append((time.monotonic(), result.version))
    assert len(table) == succeeded
    assert len({v for _, v in commits}) >= 2
    assert commits[0][0] < arrived[-1]


def test_no_shards_embeds_nothing():
    assert list(iter_embedded_batches([])) == []


def _blocks(*sizes: int) -> list[pa.Table]:
    start, out = 0, []
    for n in sizes:
        out.append(pa.table({"i": list(range(start, start + n))}))
        start += n
    return out


def test_groups_are_full_batches_and_the_rest():
    groups = list(commit_groups(_blocks(3, 0, 4, 5, 1), rows=4, seconds=60))
    assert [g["i"].to_pylist() for g in groups] == [
        [0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12]
    ]  # fmt: skip


def test_a_group_waits_at_most_commit_seconds():
    """A block every 10 s: the rows go once the first of them has waited 25 s, however few."""
    now = [0.0]

    def every_ten_seconds(blocks: list[pa.Table]):
        for block in blocks:
            now[0] += 10
            yield block

    seen: list[int] = []
    groups = commit_groups(
        every_ten_seconds(_blocks(1, 1, 1, 1, 1, 1, 1, 1, 1)),
        rows=100,
        seconds=25,
        on_block=lambda b: seen.append(b.num_rows),
        clock=lambda: now[0],
    )
    assert [g.num_rows for g in groups] == [4, 4, 1]
    assert seen == [1] * 9


def test_read_shard_takes_the_source_size(tmp_path):
    """img2dataset's original_width/height, in parquet and tar shards; null when absent."""
    image = make_image(1, (30, 20))
    parquet = tmp_path / "00000.parquet"
    pq.write_table(
        pa.table(
            {"url": ["u1", "u2"], "caption": ["c1", "c2"], "jpg": [image, None],
             "width": [256, None], "original_width": [300, None], "original_height": [200, None]}
        ),
        parquet,
    )  # fmt: skip
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"url": ["u3"], "caption": ["c3"], "png": [image]}), plain)
    tar_path = tmp_path / "00000.tar"
    with tarfile.open(tar_path, "w") as tar:
        for name, data in (
            ("k.json", json.dumps({"url": "u4", "caption": "c4", "original_width": 640,
                                   "original_height": 480}).encode()),
            ("k.jpg", image),
        ):  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    rows = pa.concat_tables(t for p in (parquet, plain, tar_path) for t in read_shard(p))
    assert rows.schema == PAIR_SCHEMA
    assert rows.select(["url", "width", "height", "shard"]).to_pylist() == [
        {"url": "u1", "width": 300, "height": 200, "shard": "00000.parquet"},
        {"url": "u3", "width": None, "height": None, "shard": "plain.parquet"},
        {"url": "u4", "width": 640, "height": 480, "shard": "00000.tar"},
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_actors": 0}, "num_actors must be at least 1, not 0"),
        ({"rows_per_batch": 0}, "rows_per_batch must be at least 1"),
        ({"gpu_batch_size": 0}, "gpu_batch_size must be at least 1"),
        ({"cpus_per_actor": 0.0}, "cpus_per_actor must be positive"),
        ({"gpus_per_actor": 1.5}, r"gpus_per_actor must be in \(0, 1\]"),
        ({"gpus_per_actor": 0.0}, r"gpus_per_actor must be in \(0, 1\]"),
        ({"commit_seconds": -1.0}, "commit_seconds must be 0 or more"),
        ({"decode_threads": -1}, "decode_threads must be 0 or more"),
        ({"precision": "int8"}, "precision must be one of"),
        ({"thumbnail_side": -1}, "thumbnail_side must be 0 or more"),
    ],
)
def test_bad_embed_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EmbedOptions(**options)


def _descendants(root: int) -> dict[int, bytes]:
    """pid -> start time of `root` and every process below it (from /proc)."""
    parents, starts = {}, {}
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        parents[int(name)], starts[int(name)] = int(fields[1]), fields[19]
    found, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid and p not in found]
        found.update(children)
        frontier.extend(children)
    return {p: starts[p] for p in found if p in starts}


def _still_running(processes: dict[int, bytes], wait: float) -> dict[int, str]:
    """Those of `processes` (pid -> start time) still running (not zombies) after up to
    `wait` seconds, with their names."""
    deadline = time.monotonic() + wait
    while True:
        alive = {}
        for pid, start in processes.items():
            try:
                stat = Path(f"/proc/{pid}/stat").read_bytes()
            except OSError:
                continue
            head, _, tail = stat.rpartition(b")")
            fields = tail.split()
            if fields[19] == start and fields[0] != b"Z":
                alive[pid] = head.split(b"(", 1)[1].decode(errors="replace")
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def _spawn(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the watchdog reads /proc")
def test_the_watchdog_ends_the_processes_of_a_killed_driver():
    """A root process and its child, which nothing else would end (no parent-death signal),
    are SIGKILLed once their driver is."""
    driver = _spawn(
        "import subprocess, sys, time\n"
        "from asif.pipeline.embed import reap_with_this_process\n"
        "sleep = [sys.executable, '-c', 'import time; time.sleep(120)']\n"
        "root = subprocess.Popen([sys.executable, '-c', "
        "f'import subprocess, time; subprocess.Popen({sleep!r}); time.sleep(120)'])\n"
        "reap_with_this_process([root.pid])\n"
        "print(root.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    try:
        assert driver.stdout is not None
        root = int(driver.stdout.readline())
        deadline = time.monotonic() + 20
        while len(_descendants(root)) < 2:  # the root's child has started
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(1.5)  # the watchdog's next look at the tree
        processes = _descendants(driver.pid)
        assert len(processes) >= 4  # driver, watchdog, root, its child
    finally:
        driver.kill()
        driver.wait(timeout=10)
    assert _still_running(processes, wait=10) == {}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the watchdog reads /proc")
def test_the_watchdog_ends_with_its_roots():
    root = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    watchdog = reap_with_this_process([root.pid])
    assert watchdog is not None
    time.sleep(0.5)
    assert watchdog.poll() is None
    root.kill()
    root.wait(timeout=10)
    assert watchdog.wait(timeout=10) == 0


def _write_shards(folder: Path, n: int, per_shard: int) -> list[Path]:
    """`n` pairs as img2dataset-style parquet shards (with the source sizes)."""
    folder.mkdir(parents=True)
    paths = []
    for start in range(0, n, per_shard):
        seeds = range(start, min(n, start + per_shard))
        sizes = [(40 + s % 50, 30 + s % 40) for s in seeds]
        table = pa.table(
            {
                "url": [f"http://127.0.0.1/img/{s}.jpg" for s in seeds],
                "caption": [caption_of(s) for s in seeds],
                "status": ["success"] * len(seeds),
                "jpg": [make_image(s, size) for s, size in zip(seeds, sizes, strict=True)],
                "original_width": [w for w, _ in sizes],
                "original_height": [h for _, h in sizes],
            }
        )
        paths.append(folder / f"{start // per_shard:05d}.parquet")
        pq.write_table(table, paths[-1])
    return paths


EMBED_AND_COMMIT = """
import json, sys, time
from asif.pipeline.commit import commit_batch
from asif.pipeline.embed import EmbedOptions, iter_embedded_batches
from asif.store.table import AnchorTable
args = json.loads(sys.argv[1])
table = AnchorTable.create_or_open(args["db"], image_encoder="efficientnet-lite0",
    text_encoder="sentence-transformers/all-MiniLM-L6-v2", image_dim=1280, text_dim=384)
for batch in iter_embedded_batches(args["shards"], EmbedOptions(**args["options"])):
    result = commit_batch(table, batch.table, quarantine_dir=args["quarantine"])
    print(f"committed {result.rows} rows, version {result.version}", flush=True)
    time.sleep(args["pause"])
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the watchdog reads /proc")
def test_a_killed_run_keeps_its_commits_leaves_no_process_and_reruns_to_every_row_once(
    tmp_path,
):
    """SIGKILL the driver (only it, not its group) once its first commit is in the table: the
    committed rows stay, every process of its local Ray ends, and a rerun upserts the rest."""
    n = 240
    shards = _write_shards(tmp_path / "shards", n, per_shard=60)
    args = {
        "db": str(tmp_path / "db"),
        "shards": [str(s) for s in shards],
        "quarantine": str(tmp_path / "quarantine"),
        "options": {**OPTIONS, "batch_size": 8, "rows_per_batch": 16, "commit_seconds": 0},
    }
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_ADDRESS": "", "HF_HUB_OFFLINE": "1"}

    def run(pause: float) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-c", EMBED_AND_COMMIT, json.dumps({**args, "pause": pause})]
        log = (tmp_path / f"run-{pause}.log").open("wb")
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)

    killed = run(pause=0.5)
    try:
        deadline = time.monotonic() + 240
        while not (tmp_path / "db").exists() or len(AnchorTable.open(args["db"])) == 0:
            assert killed.poll() is None, (tmp_path / "run-0.5.log").read_text()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.2)
        processes = _descendants(killed.pid)
        names = " ".join(Path(f"/proc/{p}/comm").read_text().strip() for p in processes)
        assert "raylet" in names and "gcs_server" in names
    finally:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
    kept = set(AnchorTable.open(args["db"]).read(["id"])["id"].to_pylist())
    assert 0 < len(kept) < n
    assert _still_running(processes, wait=15) == {}

    rerun = run(pause=0)
    assert rerun.wait(timeout=300) == 0, (tmp_path / "run-0.log").read_text()[-3000:]
    ids = AnchorTable.open(args["db"]).read(["id"])["id"].to_pylist()
    expected = {anchor_id(f"http://127.0.0.1/img/{s}.jpg", caption_of(s)) for s in range(n)}
    assert len(ids) == len(set(ids)) == n
    assert set(ids) == expected and kept <= expected
