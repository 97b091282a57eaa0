import numpy as np
import pytest

from asif.errors import SettingsError, UnsupportedOperationError
from asif.model import ModelSettings
from asif.model.from_table import index_model_from_table, model_from_table
from asif.model.relative import topk_overlap
from asif.model.zero_shot import ZeroShotClassifier
from asif.scan.lance_index import SearchSettings, build_indexes
from asif.store.batch import build_anchor_batch
from asif.store.table import AnchorTable

D, N, CLASSES = 32, 3000, 6


def noisy(rng, centers, labels, noise):
    x = centers[labels] + noise * rng.standard_normal((len(labels), centers.shape[1]))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    """A synthetic zero-shot task: anchors, images and prompts clustered around class centres."""
    rng = np.random.default_rng(0)
    image_centers, text_centers = rng.standard_normal((2, CLASSES, D))
    labels = rng.integers(0, CLASSES, N)
    table = AnchorTable.create_or_open(
        str(tmp_path_factory.mktemp("approx")), image_encoder="i", text_encoder="t",
        image_dim=D, text_dim=D,
    )  # fmt: skip
    table.upsert(
        build_anchor_batch(
            urls=[f"u{i}" for i in range(N)],
            captions=[f"c{i}" for i in range(N)],
            widths=[1] * N,
            heights=[1] * N,
            image_embeddings=noisy(rng, image_centers, labels, 1.0),
            text_embeddings=noisy(rng, text_centers, labels, 1.0),
        )
    )
    targets = rng.integers(0, CLASSES, 200)
    queries = noisy(rng, image_centers, targets, 1.2)
    prompts = noisy(rng, text_centers, np.arange(CLASSES), 0.5)
    return table, queries, prompts


@pytest.mark.parametrize("kind", ["ivf_pq", "hnsw_sq"])
def test_approximate_agrees_with_exact(task, kind):
    table, queries, prompts = task
    build_indexes(table, kind, num_partitions=4, num_sub_vectors=8)
    view = table.at(table.version)
    settings = ModelSettings("i", "t", k=100, p=8.0)
    exact = model_from_table(view, settings=settings)
    approx = index_model_from_table(view, search=SearchSettings(nprobes=4), settings=settings)
    assert approx.anchors.ids == exact.anchors.ids
    for edit in (approx.compress, approx.save, lambda _: approx.remove_anchors(["u0"])):
        with pytest.raises(UnsupportedOperationError, match="IndexScan"):
            edit("int8")
    names = [f"class {c}" for c in range(CLASSES)]

    def predict(model):
        clf = ZeroShotClassifier.from_prompt_relatives(names, ["{}"], model.text_relative(prompts))
        return model.classify_embeddings(queries, clf).label_ids

    agreement = np.mean(predict(approx) == predict(exact))
    assert agreement >= 0.95, agreement
    r_approx, r_exact = approx.image_relative(queries), exact.image_relative(queries)
    assert topk_overlap(r_approx, r_exact) >= 0.8
    assert r_approx.indices.shape == r_exact.indices.shape
    # refine_factor re-ranks with exact distances: anchors found by both get the same value
    first = dict(zip(r_approx.indices[0], r_approx.values[0], strict=True))
    shared = [i for i in r_exact.indices[0][:10] if i in first]
    a = np.array([first[i] for i in shared])
    e = dict(zip(r_exact.indices[0], r_exact.values[0], strict=True))
    np.testing.assert_allclose(a, [e[i] for i in shared], rtol=0.05, atol=1e-3)


def test_requires_an_index(tmp_path):
    table = AnchorTable.create_or_open(
        str(tmp_path), image_encoder="i", text_encoder="t", image_dim=4, text_dim=4
    )
    table.upsert(
        build_anchor_batch(
            urls=["u"], captions=["c"], widths=[1], heights=[1],
            image_embeddings=np.ones((1, 4)), text_embeddings=np.ones((1, 4)),
        )
    )  # fmt: skip
    with pytest.raises(SettingsError, match="build_indexes"):
        index_model_from_table(table)


def test_live_approximate_model_sees_rows_added_after_the_index(task):
    from asif.serve.live_model import LiveModel

    table, queries, _ = task
    build_indexes(table, "ivf_pq", num_partitions=4, num_sub_vectors=8)
    live = LiveModel(table.uri, approximate=True, k=50)
    n = len(live.snapshot.model)
    new = queries[:3]  # new anchors identical to three queries: each must be its own top hit
    table.upsert(
        build_anchor_batch(
            urls=["new0", "new1", "new2"],
            captions=["n0", "n1", "n2"],
            widths=[1] * 3,
            heights=[1] * 3,
            image_embeddings=new,
            text_embeddings=new,
        )
    )
    assert live.refresh() and len(live.snapshot.model) == n + 3
    model = live.snapshot.model
    rel = model.image_relative(new)
    assert [model.anchors.captions[i] for i in rel.indices[:, 0]] == ["n0", "n1", "n2"]
