import numpy as np

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
