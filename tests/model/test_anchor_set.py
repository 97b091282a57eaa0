import numpy as np
import pytest

from asif.errors import EmptyInputError
from asif.model.anchor_set import AnchorSet
from asif.store.ids import anchor_id


def test_build_ids_from_urls_or_embeddings():
    emb = np.eye(3, dtype=np.float32)
    a = AnchorSet.build(["x", "y", "z"], emb, urls=["http://a", None, None])
    assert a.ids[0] == anchor_id("http://a", "x")
    assert len(set(a.ids)) == 3 and a.urls == ["http://a", None, None]
    assert AnchorSet.build(["x", "y", "z"], emb).ids[1:] == a.ids[1:]  # same embedding, same id
    with pytest.raises(EmptyInputError):
        AnchorSet.build([], emb[:0])


def test_rows_extend_and_take():
    a = AnchorSet(["a", "b"], ["ca", "cb"], [None, "u"])
    b = a.extend(AnchorSet(["c", "a"], ["cc", "ca2"], [None, None]))
    assert a.ids == ["a", "b"] and a.rows(["a"]).tolist() == [0]  # unchanged
    assert b.rows(["a", "c"]).tolist() == [3, 2]  # a re-added id points at its new row
    assert b.take(np.array([1, 2])).captions == ["cb", "cc"]
    assert a.take(np.array([False, True])).ids == ["b"]
    with pytest.raises(KeyError, match="no anchors with ids \\['zz'\\]"):
        a.rows(["zz"])
    with pytest.raises(ValueError, match="unique"):
        AnchorSet(["a", "a"], ["x", "y"], [None, None])
    with pytest.raises(ValueError, match="differ in length"):
        AnchorSet(["a"], ["x", "y"], [None])
