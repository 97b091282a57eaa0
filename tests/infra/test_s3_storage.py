"""The anchor table on S3-compatible storage (a local moto server), as infra/lancedb documents."""

from __future__ import annotations

import numpy as np
import pytest

from asif.pipeline.commit import commit_batch
from asif.store.batch import build_anchor_batch
from asif.store.location import storage_options_from_env
from asif.store.table import AnchorTable
from tests.infra.services import S3Bucket, moto_s3


@pytest.fixture(scope="module")
def bucket():
    with moto_s3() as b:
        yield b


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_storage_options_from_aws_env_and_json(bucket: S3Bucket):
    options = storage_options_from_env(bucket.env)
    assert options == bucket.storage_options
    override = {**bucket.env, "ASIF_STORAGE_OPTIONS": '{"aws_region": "eu-west-1"}'}
    assert storage_options_from_env(override)["aws_region"] == "eu-west-1"
    assert storage_options_from_env({}) is None


def test_anchor_table_commits_versions_and_tags_on_s3(bucket: S3Bucket, tmp_path):
    options = storage_options_from_env(bucket.env)
    table = AnchorTable.create_or_open(
        bucket.uri, image_encoder="img", text_encoder="txt", image_dim=8, text_dim=4,
        storage_options=options,
    )  # fmt: skip
    batch = build_anchor_batch(
        urls=[f"http://127.0.0.1/{i}.jpg" for i in range(5)],
        captions=[f"caption {i}" for i in range(5)],
        widths=[10] * 5,
        heights=[10] * 5,
        image_embeddings=unit_rows(5, 8, 0),
        text_embeddings=unit_rows(5, 4, 1),
    )
    result = commit_batch(table, batch, quarantine_dir=tmp_path)
    assert result.committed and result.inserted == 5
    table.tag("s3-test")
    again = commit_batch(table, batch, quarantine_dir=tmp_path)
    assert (again.inserted, again.updated) == (0, 5)

    reopened = AnchorTable.open(bucket.uri, storage_options=options, version="s3-test")
    assert len(reopened) == 5 and reopened.version == result.version
    assert reopened.dataset_uri.startswith("s3://")
    assert len(AnchorTable.open(bucket.uri, storage_options=options)) == 5
