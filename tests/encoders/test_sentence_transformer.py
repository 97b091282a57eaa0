"""The shipped all-MiniLM-L6-v2 text encoder, local folders, hub names (offline) and bad input."""

from pathlib import Path

import huggingface_hub
import numpy as np
import pytest

from asif.encoders import sentence_transformer
from asif.encoders.base import TextEncoder
from asif.encoders.sentence_transformer import (
    DEFAULT_NAME,
    SentenceTransformerEncoder,
    shipped_model_path,
)


@pytest.fixture(scope="module")
def encoder() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(device="cpu")


class _FakeModel:
    """Stands in for SentenceTransformer where only naming is under test."""

    def __init__(self, path: str, device: str) -> None:
        self.path = path

    def eval(self) -> None:
        pass

    def get_embedding_dimension(self) -> int:
        return 8


def test_identity(encoder: SentenceTransformerEncoder) -> None:
    assert isinstance(encoder, TextEncoder)
    assert encoder.name == DEFAULT_NAME == "sentence-transformers/all-MiniLM-L6-v2"
    assert encoder.dim == 384
    assert not encoder.model.training


def test_embeddings(encoder: SentenceTransformerEncoder) -> None:
    texts = ["a photo of a dog", "", "a very long caption " * 100, "a photo of a cat"]
    out = encoder.encode(texts, batch_size=3)
    assert out.shape == (4, 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(encoder.encode(texts, batch_size=1), out, atol=1e-5)
    np.testing.assert_allclose(encoder.encode(texts[::-1], batch_size=4)[::-1], out, atol=1e-5)
    empty = encoder.encode([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32


def test_semantic_neighbours(encoder: SentenceTransformerEncoder) -> None:
    dog, puppy, earnings = encoder.encode(
        ["a photo of a dog", "a picture of a puppy", "quarterly earnings report"]
    )
    assert dog @ puppy > 0.6 > 0.2 > dog @ earnings


def test_non_string_items_are_named_by_index(encoder: SentenceTransformerEncoder) -> None:
    with pytest.raises(TypeError, match="text #1 is NoneType, expected str"):
        encoder.encode(["fine", None])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="text #0 is bytes"):
        encoder.encode([b"bytes"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="sequence of strings"):
        encoder.encode("a single caption")


def test_local_folder_is_named_by_its_base_name(
    encoder: SentenceTransformerEncoder, tmp_path: Path
) -> None:
    folder = tmp_path / "my-minilm"
    for source in shipped_model_path().rglob("*"):
        if source.is_file():
            target = folder / source.relative_to(shipped_model_path())
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source)
    local = SentenceTransformerEncoder(str(folder), device="cpu")
    assert local.name == "my-minilm" and local.dim == 384
    texts = ["two cats on a sofa", ""]
    np.testing.assert_allclose(local.encode(texts), encoder.encode(texts), atol=1e-6)


def test_names_of_shipped_path_and_hub_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sentence_transformer, "SentenceTransformer", _FakeModel)
    shipped = SentenceTransformerEncoder(str(shipped_model_path()), device="cpu")
    assert shipped.name == DEFAULT_NAME
    hub = SentenceTransformerEncoder("someorg/some-model", device="cpu")
    assert (hub.name, hub.model.path) == ("someorg/some-model", "someorg/some-model")


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        SentenceTransformerEncoder(str(tmp_path / "no-such-model"))


def test_hub_model_offline_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(RuntimeError, match="hub model .*'someorg/not-cached-model'"):
        SentenceTransformerEncoder("someorg/not-cached-model", device="cpu")
