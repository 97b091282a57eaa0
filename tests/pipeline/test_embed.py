"""embed step: downloaded + local shards through Ray Data -> anchor rows, checked against the
encoders called directly on the same image bytes."""

from __future__ import annotations

import io
import json
import os
import tarfile

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from PIL import Image

from asif.pipeline.download import DownloadOptions, download_pairs
from asif.pipeline.embed import EmbedOptions, init_ray, iter_embedded_batches
from asif.pipeline.folders import pairs_from_folder
from asif.store.ids import anchor_id
from asif.store.schema import anchor_columns
from tests.http_fixtures import ImageServer, generate_pairs, write_image_folder, write_url_list

IMAGE_ENCODER = "efficientnet-lite0"
TEXT_ENCODER = "all-MiniLM-L6-v2"
ROWS_PER_BATCH = 4


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Parquet shards from a download, webdataset shards from a folder, one corrupted shard."""
    tmp = tmp_path_factory.mktemp("embed")
    items = generate_pairs(8, n_missing=1, n_html=1)
    with ImageServer(items) as server:
        url_list = write_url_list(server, [p for p, _ in items], tmp / "urls.parquet")
        options = DownloadOptions(samples_per_shard=6, threads=4)
        downloaded = download_pairs(url_list, tmp / "dl", options)
    folder = write_image_folder(tmp / "images", 3, start=50)
    local = pairs_from_folder(folder, tmp / "local", DownloadOptions(output_format="webdataset"))

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
    return files, downloaded.succeeded + local.succeeded


@pytest.fixture(scope="module")
def embedded(shards):
    import ray

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = not ray.is_initialized()
    init_ray()
    files, _ = shards
    options = EmbedOptions(
        image_encoder=IMAGE_ENCODER,
        text_encoder=TEXT_ENCODER,
        batch_size=4,
        rows_per_batch=ROWS_PER_BATCH,
    )
    batches = list(iter_embedded_batches(files, options))
    yield batches
    if started:
        ray.shutdown()


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
    from asif.encoders import load_image_encoder, load_text_encoder

    files, succeeded = shards
    table = pa.concat_tables(b.table for b in embedded)
    assert table.num_rows == succeeded == 11
    source = _source_rows(files[:-1])
    urls = table["url"].to_pylist()
    assert sorted(urls) == sorted(source)
    captions = table["caption"].to_pylist()
    assert captions == [source[u][0] for u in urls]
    assert table["id"].to_pylist() == [anchor_id(u, c) for u, c in zip(urls, captions, strict=True)]
    sizes = [Image.open(io.BytesIO(source[u][1])).size for u in urls]
    assert list(zip(table["width"].to_pylist(), table["height"].to_pylist(), strict=True)) == sizes
    names = {f.name for f in files}
    assert set(table["shard"].to_pylist()) <= names
    assert {s.endswith(".tar") for s in table["shard"].to_pylist()} == {True, False}

    image_emb = np.stack(table["image_embedding"].to_numpy(zero_copy_only=False))
    text_emb = np.stack(table["text_embedding"].to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(np.linalg.norm(image_emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(text_emb, axis=1), 1.0, atol=1e-5)
    direct_image = load_image_encoder(IMAGE_ENCODER, "cpu").encode([source[u][1] for u in urls])
    direct_text = load_text_encoder(TEXT_ENCODER, "cpu").encode(captions)
    np.testing.assert_allclose(image_emb, direct_image, atol=1e-4)
    np.testing.assert_allclose(text_emb, direct_text, atol=1e-4)


def test_undecodable_images_are_dropped_and_reported(embedded):
    failed = pa.concat_tables(b.failed for b in embedded)
    assert sorted(failed["url"].to_pylist()) == [
        "http://example.invalid/garbage.jpg",
        "http://example.invalid/truncated.jpg",
    ]
    assert set(failed["shard"].to_pylist()) == {"corrupt.parquet"}
    assert all("cannot decode" in e for e in failed["error"].to_pylist())


def test_no_shards_embeds_nothing():
    assert list(iter_embedded_batches([])) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_actors": 0}, "num_actors must be at least 1, not 0"),
        ({"rows_per_batch": 0}, "rows_per_batch must be at least 1"),
        ({"cpus_per_actor": 0.0}, "cpus_per_actor must be positive"),
    ],
)
def test_bad_embed_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EmbedOptions(**options)
