import numpy as np
import pytest

from asif.errors import (
    DimensionMismatchError,
    EmptyInputError,
    EncoderMismatchError,
    LabelError,
    NonFiniteError,
    TemplateError,
    UnsupportedOperationError,
)
from asif.model import AsifModel, ModelSettings
from asif.model.zero_shot import prompts
from tests.dense_reference import dense_relative, random_unit, unit

CLASSES = ["cat", "dog", "car", "tree"]
TEMPLATES = ["a photo of a {}.", "a drawing of a {}.", "a {} in the wild."]


def make_model(rng, n=600, di=24, dt=16, k=60, chunk=128, **kw):
    return AsifModel.from_embeddings(
        random_unit(rng, n, di),
        random_unit(rng, n, dt),
        [f"caption {i}" for i in range(n)],
        ModelSettings("img-enc", "txt-enc", k=k, p=8),
        urls=[f"http://127.0.0.1/{i}.jpg" for i in range(n)],
        chunk_size=chunk,
        **kw,
    )


def dense_scores(model, images, prompt_emb, strategy):
    scan, s = model.scan, model.settings
    ri = dense_relative(images, scan.image.to_float32(), s.k, s.p)
    rt = dense_relative(prompt_emb, scan.text.to_float32(), s.k, s.p)
    rt = rt.reshape(len(CLASSES), len(TEMPLATES), -1)
    if strategy == "max":
        return np.einsum("in,ctn->ict", ri, rt).max(axis=2)
    return ri @ unit(rt.mean(axis=1)).T


@pytest.mark.parametrize("strategy", ["max", "mean"])
@pytest.mark.parametrize(("n", "k", "chunk"), [(600, 60, 128), (40, 800, 7), (1000, 800, 100_000)])
def test_classify_matches_dense_reference(strategy, n, k, chunk):
    rng = np.random.default_rng(n)
    model = make_model(rng, n=n, k=k, chunk=chunk)
    images = random_unit(rng, 30, 24)
    prompt_emb = random_unit(rng, len(CLASSES) * len(TEMPLATES), 16)
    clf = model.zero_shot_classifier(CLASSES, TEMPLATES, strategy, prompt_emb)
    pred = model.classify_embeddings(images, clf)
    expected = dense_scores(model, images, prompt_emb, strategy)
    np.testing.assert_allclose(pred.scores, expected, atol=1e-5)
    np.testing.assert_array_equal(pred.label_ids, expected.argmax(axis=1))
    assert pred.labels == [CLASSES[i] for i in expected.argmax(axis=1)]


def test_classify_compressed_models_agree_with_float32():
    rng = np.random.default_rng(11)
    model = make_model(rng, n=3000, k=200, chunk=1000)
    images = random_unit(rng, 50, 24)
    prompt_emb = random_unit(rng, 12, 16)
    ref = model.classify_embeddings(
        images, model.zero_shot_classifier(CLASSES, TEMPLATES, "max", prompt_emb)
    )
    for precision, tol in (("float16", 2e-3), ("int8", 2e-2)):
        small = model.compress(precision)
        assert small.scan.image.nbytes < model.scan.image.nbytes
        clf = small.zero_shot_classifier(CLASSES, TEMPLATES, "max", prompt_emb)
        pred = small.classify_embeddings(images, clf)
        assert np.abs(pred.scores - ref.scores).max() < tol, precision


def test_unknown_below_threshold():
    rng = np.random.default_rng(2)
    model = make_model(rng)
    images = random_unit(rng, 40, 24)
    clf = model.zero_shot_classifier(CLASSES, TEMPLATES, "max", random_unit(rng, 12, 16))
    pred = model.classify_embeddings(images, clf)
    threshold = float(np.median(pred.scores.max(axis=1)))
    gated = model.classify_embeddings(images, clf, threshold=threshold)
    low = pred.scores.max(axis=1) < threshold
    assert low.any() and (~low).any()
    assert all(lbl == "unknown" for lbl in np.array(gated.labels)[low])
    np.testing.assert_array_equal(gated.label_ids[~low], pred.label_ids[~low])
    assert (gated.label_ids[low] == -1).all()
    assert gated.accuracy(pred.label_ids) == pytest.approx((~low).mean())


def test_explain_contributions_sum_to_the_score():
    rng = np.random.default_rng(4)
    model = make_model(rng, k=30)
    image = random_unit(rng, 1, 24)[0]
    for strategy in ("max", "mean"):
        clf = model.zero_shot_classifier(CLASSES, TEMPLATES, strategy, random_unit(rng, 12, 16))
        exp = model.explain_embedding(image, clf, top=10_000)
        scores = model.classify_embeddings(image[None], clf).scores[0]
        assert exp.label == CLASSES[int(scores.argmax())]
        assert exp.score == pytest.approx(scores.max(), abs=1e-6)
        assert sum(c.contribution for c in exp.anchors) == pytest.approx(exp.score, abs=1e-5)
        top = model.explain_embedding(image, clf, label="car", top=3)
        assert top.label == "car" and len(top.anchors) <= 3
        assert [c.contribution for c in top.anchors] == sorted(
            (c.contribution for c in top.anchors), reverse=True
        )
        first = top.anchors[0]
        row = model.anchors.ids.index(first.anchor_id)
        assert first.caption == f"caption {row}" and first.url.endswith(f"/{row}.jpg")
        assert "because of" in str(top)
    with pytest.raises(LabelError, match="not one of"):
        model.explain_embedding(image, clf, label="zebra")


def test_retrieve_both_directions():
    rng = np.random.default_rng(5)
    # anchors whose image and text embeddings are linked: pair i shares a latent vector
    latent = random_unit(rng, 400, 8)
    to_img, to_txt = rng.normal(size=(8, 24)), rng.normal(size=(8, 16))
    model = AsifModel.from_embeddings(
        latent @ to_img,
        latent @ to_txt,
        [f"c{i}" for i in range(400)],
        ModelSettings("i", "t", k=20),
    )
    queries = random_unit(rng, 10, 8)
    idx, scores = model.retrieve_embeddings(queries @ to_img, queries @ to_txt, "image", top=3)
    assert idx.shape == (10, 3) and (np.diff(scores, axis=1) <= 0).all()
    assert (idx[:, 0] == np.arange(10)).mean() >= 0.8  # each image finds its own caption
    idx, _ = model.retrieve_embeddings(queries @ to_txt, queries @ to_img, "text", top=1)
    assert (idx[:, 0] == np.arange(10)).mean() >= 0.8
    with pytest.raises(EmptyInputError):
        model.retrieve_embeddings(queries @ to_img, np.zeros((0, 16)), "image")


def test_add_and_remove_anchors_equal_a_rebuilt_model():
    rng = np.random.default_rng(6)
    img, txt = random_unit(rng, 300, 24), random_unit(rng, 300, 16)
    caps = [f"c{i}" for i in range(300)]
    settings = ModelSettings("i", "t", k=25)
    model = AsifModel.from_embeddings(img[:200], txt[:200], caps[:200], settings, chunk_size=64)
    before = model.scan.image.data.copy()
    model.add_anchors(img[200:], txt[200:], caps[200:])
    np.testing.assert_array_equal(model.scan.image.data[:200], before)
    full = AsifModel.from_embeddings(img, txt, caps, settings, chunk_size=64)
    assert model.anchors.ids == full.anchors.ids
    queries, prompt_emb = random_unit(rng, 8, 24), random_unit(rng, 12, 16)
    same = [
        m.classify_embeddings(
            queries, m.zero_shot_classifier(CLASSES, TEMPLATES, "max", prompt_emb)
        )
        for m in (model, full)
    ]
    np.testing.assert_allclose(same[0].scores, same[1].scores, atol=1e-6)

    model.remove_anchors(full.anchors.ids[:50])
    assert len(model) == 250
    rebuilt = AsifModel.from_embeddings(img[50:], txt[50:], caps[50:], settings, chunk_size=64)
    a = model.image_relative(queries).to_dense()
    np.testing.assert_allclose(a, rebuilt.image_relative(queries).to_dense(), atol=1e-6)

    with pytest.raises(ValueError, match="already present"):
        model.add_anchors(img[60:61], txt[60:61], caps[60:61])
    with pytest.raises(DimensionMismatchError, match="24"):
        model.add_anchors(np.ones((1, 5)), txt[:1], ["new"])
    with pytest.raises(NonFiniteError, match="anchor embeddings"):
        model.add_anchors(np.full((1, 24), np.nan), txt[:1], ["new"])
    with pytest.raises(NonFiniteError, match="image embeddings"):
        model.image_relative(np.full((1, 24), -np.inf))
    with pytest.raises(KeyError, match="no anchors with ids"):
        model.remove_anchors(["nope"])
    with pytest.raises(EmptyInputError):
        model.remove_anchors(model.anchors.ids)


def test_prune_keeps_the_task_support_and_predictions():
    rng = np.random.default_rng(8)
    model = make_model(rng, n=5000, k=50, chunk=1000)
    images, prompt_emb = random_unit(rng, 60, 24), random_unit(rng, 12, 16)
    clf = model.zero_shot_classifier(CLASSES, TEMPLATES, "max", prompt_emb)
    full = model.classify_embeddings(images, clf)
    small = model.prune(CLASSES, TEMPLATES, prompt_embeddings=prompt_emb)
    support = np.unique(clf.text_relative.indices)
    assert len(small) == len(support) < len(model) / 5
    assert set(small.anchors.ids) == {model.anchors.ids[i] for i in support}
    pruned = small.classify_embeddings(
        images, small.zero_shot_classifier(CLASSES, TEMPLATES, "max", prompt_emb)
    )
    assert (pruned.label_ids == full.label_ids).mean() >= 0.8


def test_prompts_and_bad_labels():
    assert prompts(["a", "b"], ["x {}", "y {}"]) == ["x a", "y a", "x b", "y b"]
    with pytest.raises(EmptyInputError, match="label list is empty"):
        prompts([], ["{}"])
    with pytest.raises(EmptyInputError, match="template"):
        prompts(["a"], [])
    with pytest.raises(TemplateError, match="'{}'"):
        prompts(["a"], ["no slot"])
    with pytest.raises(LabelError, match="positions \\[1\\]"):
        prompts(["a", " "], ["{}"])


class FakeEncoder:
    def __init__(self, name, dim):
        self.name, self.dim = name, dim

    def encode(self, items, batch_size=32, progress=False):
        rng = np.random.default_rng(abs(hash(tuple(map(str, items)))) % 2**32)
        return random_unit(rng, len(items), self.dim)


def test_encoders_must_match_the_anchors():
    model = make_model(np.random.default_rng(9))
    with pytest.raises(EncoderMismatchError, match="img-enc"):
        model.attach_encoders(FakeEncoder("other", 24), None)
    with pytest.raises(DimensionMismatchError, match="12-d"):
        model.attach_encoders(None, FakeEncoder("txt-enc", 12))
    with pytest.raises(UnsupportedOperationError, match="no text encoder attached"):
        model.classify(["x.jpg"], CLASSES)
    model.attach_encoders(FakeEncoder("img-enc", 24), FakeEncoder("txt-enc", 16))
    pred = model.classify(["a.jpg", "b.jpg"], CLASSES, TEMPLATES)
    assert len(pred.labels) == 2 and pred.scores.shape == (2, 4)
    with pytest.raises(EmptyInputError):
        model.classify(["a.jpg"], [])


def test_a_live_model_offers_queries_not_edits_until_compacted():
    from asif.scan.tombstones import TombstoneScan

    rng = np.random.default_rng(12)
    model = make_model(rng, n=50, k=10)
    live = model.with_anchors(model.anchors, TombstoneScan(model.scan, np.array([0, 1])))
    assert len(live) == 48 and live.image_relative(random_unit(rng, 2, 24)).n_anchors == 50
    with pytest.raises(UnsupportedOperationError, match=r"compacted\(\)"):
        live.add_anchors(random_unit(rng, 1, 24), random_unit(rng, 1, 16), ["x"])
    compact = live.compacted()
    assert len(compact) == 48 and compact.anchors.ids == model.anchors.ids[2:]
    assert model.compacted() is model
