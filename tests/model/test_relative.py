import numpy as np
import pytest

from asif.errors import DimensionMismatchError, EmptyInputError, NonFiniteError
from asif.model.relative import finish, relative_representation, similarity, topk_overlap
from asif.model.settings import DEFAULT_P
from asif.scan.matrix import AnchorMatrix
from tests.dense_reference import dense_relative, random_unit


@pytest.mark.parametrize(
    ("n_anchors", "d", "k", "chunk"),
    [
        (1, 8, 800, 100_000),  # a single anchor
        (50, 16, 800, 100_000),  # k > N
        (1000, 32, 800, 100_000),  # the reference default k, one chunk
        (1001, 32, 100, 300),  # N not a multiple of the chunk
        (997, 16, 250, 64),  # k > chunk
        (500, 8, 1, 7),  # k = 1, tiny chunks
        (4096, 64, 37, 1000),
    ],
)
def test_matches_dense_reference(n_anchors, d, k, chunk):
    rng = np.random.default_rng(n_anchors + k)
    anchors = random_unit(rng, n_anchors, d)
    queries = rng.normal(size=(13, d)).astype(np.float32) * 3  # not unit norm on purpose
    rel = relative_representation(queries, anchors, k=k, p=8, chunk_size=chunk)
    assert rel.indices.shape == (13, min(k, n_anchors))
    np.testing.assert_allclose(rel.to_dense(), dense_relative(queries, anchors, k, 8), atol=1e-5)


@pytest.mark.parametrize("p", [1.0, 3.0, 8.0])
def test_power_and_unit_norm(p):
    rng = np.random.default_rng(1)
    anchors, queries = random_unit(rng, 300, 12), random_unit(rng, 5, 12)
    rel = relative_representation(queries, anchors, k=40, p=p, chunk_size=64)
    np.testing.assert_allclose(rel.to_dense(), dense_relative(queries, anchors, 40, p), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(rel.values, axis=1), 1, atol=1e-5)
    assert (np.diff(rel.values, axis=1) <= 0).all(), "values are sorted, largest first"


def test_ties_go_to_the_lower_index_across_chunks():
    # one-hot anchors repeated: every query has many exactly tied similarities
    base = np.eye(4, dtype=np.float32)
    anchors = np.tile(base, (25, 1))  # 100 anchors, each direction 25 times
    queries = np.array([[1, 0, 0, 0], [0.6, 0.8, 0, 0], [0, 0, 0, 1]], dtype=np.float32)
    sims = queries / np.linalg.norm(queries, axis=1, keepdims=True) @ anchors.T
    index = np.broadcast_to(np.arange(len(anchors)), sims.shape)
    by_value_then_index = np.lexsort((index, -sims), axis=1)[:, :30]
    for chunk in (3, 10, 32, 33, 1000):
        rel = relative_representation(queries, anchors, k=30, p=2, chunk_size=chunk)
        np.testing.assert_allclose(
            rel.to_dense(), dense_relative(queries, anchors, 30, 2), atol=1e-6
        )
        np.testing.assert_array_equal(rel.indices, by_value_then_index)


@pytest.mark.parametrize("chunk", [256, 1000, 5000])
def test_ties_in_random_positions_keep_index_order(chunk):
    # 6 distinct anchors repeated in random order: every similarity is tied many times over
    rng = np.random.default_rng(3)
    anchors = random_unit(rng, 6, 16)[rng.integers(0, 6, 3000)]
    queries = random_unit(rng, 9, 16)
    rel = relative_representation(queries, anchors, k=700, p=2, chunk_size=chunk)
    sims = queries @ anchors.T
    index = np.broadcast_to(np.arange(len(anchors)), sims.shape)
    np.testing.assert_array_equal(rel.indices, np.lexsort((index, -sims), axis=1)[:, :700])


@pytest.mark.parametrize("k", [4, 30])  # 20 new entries a chunk: above and below 4k
def test_every_chunk_beats_the_running_top_k(k):
    # similarity rises with the anchor index: each chunk displaces all that came before
    angles = np.linspace(1.5, 0.0, 200)
    anchors = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    queries = np.array([[1.0, 0.0], [0.9, 0.1]], dtype=np.float32)
    rel = relative_representation(queries, anchors, k=k, p=3, chunk_size=20)
    np.testing.assert_allclose(rel.to_dense(), dense_relative(queries, anchors, k, 3), atol=1e-6)
    assert (rel.indices[0] == np.arange(199, 199 - k, -1)).all()


def test_negative_similarities_are_clamped():
    anchors = np.array([[1, 0], [-1, 0], [0, 1]], dtype=np.float32)
    rel = relative_representation(np.array([[1.0, -0.2]]), anchors, k=3, p=1)
    dense = rel.to_dense()[0]
    assert dense[1] == 0 and dense[2] == 0 and dense[0] == pytest.approx(1)


def test_all_negative_gives_a_zero_vector_not_nan():
    anchors = np.array([[1, 0], [0.8, 0.6]], dtype=np.float32)
    rel = relative_representation(np.array([[-1.0, -0.1]]), anchors, k=2)
    assert np.isfinite(rel.values).all() and not rel.values.any()


def test_float16_and_int8_anchors():
    rng = np.random.default_rng(7)
    anchors, queries = random_unit(rng, 2000, 48), random_unit(rng, 20, 48)
    exact = relative_representation(queries, anchors, k=100, chunk_size=512)
    texts = relative_representation(random_unit(rng, 6, 48), anchors, k=100, chunk_size=512)
    for precision, tol in (("float16", 1e-2), ("int8", 5e-2)):
        compressed = AnchorMatrix.from_float(anchors, precision)
        rel = relative_representation(queries, compressed, k=100, chunk_size=512)
        # exact against the dequantised anchors ...
        ref = dense_relative(queries, compressed.to_float32(), 100, DEFAULT_P)
        np.testing.assert_allclose(rel.to_dense(), ref, atol=1e-5)
        # ... and close to float32 in the scores that matter
        diff = np.abs(similarity(rel, texts) - similarity(exact, texts)).max()
        assert diff < tol, (precision, diff)


def test_similarity_is_the_dense_inner_product():
    rng = np.random.default_rng(3)
    anchors = random_unit(rng, 700, 16)
    a = relative_representation(random_unit(rng, 9, 16), anchors, k=50, chunk_size=128)
    b = relative_representation(random_unit(rng, 4, 16), anchors, k=70, chunk_size=999)
    np.testing.assert_allclose(similarity(a, b), a.to_dense() @ b.to_dense().T, atol=1e-6)


def test_bad_inputs_name_the_problem():
    anchors = np.eye(3, dtype=np.float32)
    with pytest.raises(DimensionMismatchError, match="are 3-d"):
        relative_representation(np.ones((2, 4)), anchors)
    with pytest.raises(EmptyInputError, match="empty"):
        relative_representation(np.ones((2, 3)), np.zeros((0, 3), np.float32))
    with pytest.raises(ValueError, match="k and chunk_size"):
        relative_representation(np.ones((2, 3)), anchors, k=0)
    with pytest.raises(NonFiniteError, match=r"query embeddings .* first: \[1\]"):
        relative_representation(np.array([[1, 0, 0], [0, np.nan, 0]]), anchors)


def test_finish_is_scale_free_and_does_not_underflow():
    sims = np.array([[0.5, 0.25, -0.1], [1e-7, 5e-8, 0.0], [-1.0, -0.5, -0.2]], np.float32)
    out = finish(sims, 8.0)
    np.testing.assert_allclose(out[0], [1, 2.0**-8, 0] / np.hypot(1, 2.0**-8), rtol=1e-6)
    np.testing.assert_allclose(out[1], out[0], rtol=1e-6)  # 1e-7^8 underflows in float32
    assert (out[2] == 0).all()  # nothing similar: no direction, no NaN


def test_topk_overlap():
    rng = np.random.default_rng(4)
    anchors = random_unit(rng, 200, 8)
    a = relative_representation(random_unit(rng, 5, 8), anchors, k=10)
    assert topk_overlap(a, a) == 1.0
    b = relative_representation(random_unit(rng, 5, 8), anchors, k=10)
    assert 0 <= topk_overlap(a, b) < 1
