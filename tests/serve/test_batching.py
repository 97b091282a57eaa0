import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from asif.errors import ImageDecodeError, SettingsError
from asif.model.relative import SparseRelative
from asif.serve.batching import BatchSettings, ImageBatcher
from asif.serve.live_model import LiveModel
from tests.serve.conftest import shape_image


class GreyEncoder:
    """Embeds an image as [its first pixel's red value, 1]; records each call's batch size.
    Refuses (the whole call) any batch holding a pure black image."""

    name, dim = "grey", 2

    def __init__(self) -> None:
        self.calls: list[int] = []

    def encode(self, images, batch_size=32, progress=False):
        self.calls.append(len(images))
        if any(im.getpixel((0, 0)) == (0, 0, 0) for im in images):
            raise ImageDecodeError("black image")
        return np.array([[im.getpixel((0, 0))[0], 1.0] for im in images], np.float32)


def model(encoder):
    """A stand-in for AsifModel: r(x) is x's first entry on anchor 0; scans are counted."""
    scans = []

    def image_relative(embeddings):
        scans.append(len(embeddings))
        n = len(embeddings)
        return SparseRelative(np.zeros((n, 1), np.int64), embeddings[:, :1].copy(), 1)

    return SimpleNamespace(
        image_encoder=encoder, embed_images=lambda images: encoder.encode(images, len(images)),
        image_relative=image_relative, scans=scans,
    )  # fmt: skip


def grey(value: int) -> Image.Image:
    return Image.new("RGB", (4, 4), (value, value, value))


def embed_together(batcher, models, values):
    """Embed `values` from as many threads at once; each thread's row."""
    start = threading.Barrier(len(values))

    def one(i):
        start.wait()
        return batcher.embed(models[i], grey(values[i]))

    with ThreadPoolExecutor(len(values)) as pool:
        return list(pool.map(one, range(len(values))))


def test_images_that_arrive_together_are_encoded_together():
    encoder = GreyEncoder()
    one_model = model(encoder)
    batcher = ImageBatcher(BatchSettings(max_batch=8, batch_wait=0.5))
    rows = embed_together(batcher, [one_model] * 12, list(range(1, 13)))
    assert [r.embedding.tolist() for r in rows] == [[[float(v), 1.0]] for v in range(1, 13)]
    assert [r.relative.values.tolist() for r in rows] == [[[float(v)]] for v in range(1, 13)]
    assert sum(encoder.calls) == 12 and max(encoder.calls) == 8 and len(encoder.calls) <= 3
    assert one_model.scans == encoder.calls  # one scan per batch
    batcher.close()
    assert batcher.embed(model(encoder), grey(7)).embedding.tolist() == [[7.0, 1.0]]  # restarts
    batcher.close()


def test_one_image_is_not_kept_waiting_past_the_bound():
    encoder = GreyEncoder()
    batcher = ImageBatcher(BatchSettings(max_batch=8, batch_wait=0.05))
    assert batcher.embed(model(encoder), grey(3)).embedding.tolist() == [[3.0, 1.0]]
    assert encoder.calls == [1]
    batcher.close()


def test_without_batching_each_request_encodes_its_own():
    encoder = GreyEncoder()
    batcher = ImageBatcher(BatchSettings(max_batch=1))
    embed_together(batcher, [model(encoder)] * 4, [1, 2, 3, 4])
    assert encoder.calls == [1, 1, 1, 1] and batcher._worker is None


def test_a_failing_image_fails_only_its_own_request():
    encoder = GreyEncoder()
    batcher = ImageBatcher(BatchSettings(max_batch=8, batch_wait=0.5))
    start = threading.Barrier(4)

    def one(value):
        start.wait()
        try:
            return batcher.embed(model(encoder), grey(value)).embedding[0, 0]
        except ImageDecodeError as e:
            return str(e)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(one, [5, 0, 6, 7]))
    assert answers == [5.0, "black image", 6.0, 7.0]
    batcher.close()


def test_each_encoder_gets_only_its_images():
    a, b = GreyEncoder(), GreyEncoder()
    batcher = ImageBatcher(BatchSettings(max_batch=8, batch_wait=0.5))
    rows = embed_together(batcher, [model(a), model(b)] * 3, [1, 2, 3, 4, 5, 6])
    assert [r.embedding[0, 0] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert sum(a.calls) == sum(b.calls) == 3
    batcher.close()


def test_a_model_without_image_encoder_raises_its_own_error():
    def refuse(images):
        raise SettingsError("no image encoder")

    batcher = ImageBatcher(BatchSettings(max_batch=8))
    with pytest.raises(SettingsError, match="no image encoder"):
        batcher.embed(SimpleNamespace(image_encoder=None, embed_images=refuse), grey(1))


def test_batched_answers_equal_one_at_a_time_with_a_real_model(shape_table, encoders):
    real = LiveModel(shape_table.uri, image_encoder=encoders[0], text_encoder=encoders[1], k=10)
    images = [shape_image(c, s, i) for i, (c, s) in enumerate([("red", "circle")] * 3)]
    alone = [
        ImageBatcher(BatchSettings(max_batch=1)).embed(real.snapshot.model, im) for im in images
    ]
    batcher = ImageBatcher(BatchSettings(max_batch=8, batch_wait=0.5))
    start = threading.Barrier(3)

    def one(im):
        start.wait()
        return batcher.embed(real.snapshot.model, im)

    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(one, images))
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_allclose(b.embedding, a.embedding, atol=1e-5)
        assert set(b.relative.indices[0]) == set(a.relative.indices[0])
        np.testing.assert_allclose(
            np.sort(b.relative.values[0]), np.sort(a.relative.values[0]), atol=1e-5
        )
    batcher.close()


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"max_batch": 0}, "max_batch"), ({"batch_wait": -1}, "batch_wait"),
     ({"batch_wait": float("nan")}, "batch_wait")],
)  # fmt: skip
def test_settings_are_checked(settings, message):
    with pytest.raises(SettingsError, match=message):
        BatchSettings(**settings)
