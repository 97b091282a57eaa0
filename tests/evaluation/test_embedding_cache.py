import numpy as np
import pytest

from asif.evaluation import embedding_cache
from asif.evaluation.benchmarks import load_benchmark
from asif.evaluation.embedding_cache import EmbeddingCache, default_cache_dir


class CountingEncoder:
    name = "fake/encoder"
    dim = 4

    def __init__(self):
        self.calls = 0

    def encode(self, items, batch_size=32, progress=False):
        self.calls += 1
        return np.random.default_rng(len(items)).normal(size=(len(items), 4)).astype(np.float32)


def test_image_cache_hit_and_miss(tmp_path):
    enc = CountingEncoder()
    cache = EmbeddingCache(tmp_path)
    b = load_benchmark("digits", limit=20)
    first = cache.image_embeddings(b, enc.name, lambda: enc)
    again = EmbeddingCache(tmp_path).image_embeddings(b, enc.name, lambda: enc)
    np.testing.assert_array_equal(first, again)
    assert enc.calls == 1 and cache.stats["image_misses"] == 1
    assert cache.image_path(b, enc.name).is_file()
    assert cache.image_path(b, enc.name).parent.name == "fake_encoder"
    cache.image_embeddings(load_benchmark("digits", limit=21), enc.name, lambda: enc)
    cache.image_embeddings(b, "other-encoder", lambda: enc)
    assert enc.calls == 3 and cache.stats == {"image_misses": 3}


def test_text_cache(tmp_path):
    enc = CountingEncoder()
    cache = EmbeddingCache(tmp_path)
    a = cache.text_embeddings(["a photo of a cat.", "a photo of a dog."], enc.name, lambda: enc)
    b = cache.text_embeddings(["a photo of a cat.", "a photo of a dog."], enc.name, lambda: enc)
    cache.text_embeddings(["a photo of a cat."], enc.name, lambda: enc)
    np.testing.assert_array_equal(a, b)
    assert enc.calls == 2 and cache.stats == {"text_hits": 1, "text_misses": 2}


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("ASIF_EVAL_CACHE", raising=False)
    assert default_cache_dir(str(tmp_path)) == tmp_path / "evaluation-cache"
    assert "asif" in str(default_cache_dir("s3://bucket/db"))
    monkeypatch.setenv("ASIF_EVAL_CACHE", str(tmp_path / "c"))
    assert default_cache_dir(str(tmp_path)) == tmp_path / "c"


class Interrupted(Exception):
    """A run killed mid-embedding (not KeyboardInterrupt: that would stop pytest itself)."""


class FailingEncoder(CountingEncoder):
    """Embeds the first `good` calls, then fails: an interrupted run."""

    def __init__(self, good):
        super().__init__()
        self.good = good
        self.sizes = []

    def encode(self, items, batch_size=32, progress=False):
        if self.calls >= self.good:
            raise Interrupted
        self.sizes.append(len(items))
        return super().encode(items, batch_size, progress)


def test_an_interrupted_embedding_resumes_from_its_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(embedding_cache, "EMBED_CHUNK", 8)
    b = load_benchmark("digits", limit=20)  # chunks of 8, 8 and 4 images
    cache = EmbeddingCache(tmp_path)
    interrupted = FailingEncoder(good=2)
    with pytest.raises(Interrupted):
        cache.image_embeddings(b, "enc", lambda: interrupted)
    assert not cache.image_path(b, "enc").is_file()
    resumed = FailingEncoder(good=1)
    x = cache.image_embeddings(b, "enc", lambda: resumed)
    assert resumed.sizes == [4]  # only the chunk not done before
    whole = CountingEncoder().encode([None] * 8)
    np.testing.assert_array_equal(x[:8], whole)  # the stored chunk, in its place
    assert x.shape == (20, 4) and not cache.image_path(b, "enc").with_suffix(".parts").exists()
    np.testing.assert_array_equal(cache.image_embeddings(b, "enc", lambda: resumed), x)
