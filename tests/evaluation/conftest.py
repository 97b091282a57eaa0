"""Session fixtures: a real anchor table, the test benchmark and the shared embedding cache."""

from __future__ import annotations

import pytest

from asif.evaluation.benchmarks import Benchmark, load_benchmark
from asif.evaluation.embedding_cache import EmbeddingCache
from asif.store.table import AnchorTable
from tests.evaluation.shared import TEST_LIMIT, make_anchor_table, session_cache_dir


@pytest.fixture(scope="session")
def anchor_table(tmp_path_factory: pytest.TempPathFactory) -> AnchorTable:
    """A table of real Fashion-MNIST anchors with captions (read-only for tests)."""
    return make_anchor_table(tmp_path_factory.mktemp("anchor-db"))


@pytest.fixture(scope="session")
def benchmark() -> Benchmark:
    """`TEST_LIMIT` held-out Fashion-MNIST test images."""
    return load_benchmark("fashion-mnist", "test", limit=TEST_LIMIT)


@pytest.fixture(scope="session")
def cache() -> EmbeddingCache:
    return EmbeddingCache(session_cache_dir())
