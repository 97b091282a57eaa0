import numpy as np

from asif.model.anchor_set import AnchorSet
from asif.model.explain import Contribution, Explanation, contributions
from asif.model.relative import SparseRelative


def test_contributions_are_the_largest_shared_products():
    anchors = AnchorSet(["a", "b", "c", "d"], ["ca", "cb", "cc", "cd"], [None, "u", None, None])
    image = SparseRelative(np.array([[0, 1, 2]]), np.array([[0.8, 0.5, 0.3]], np.float32), 4)
    text = SparseRelative(np.array([[1, 2, 3]]), np.array([[0.6, 0.6, 0.5]], np.float32), 4)
    found = contributions(anchors, image, text, top=5)
    assert [c.anchor_id for c in found] == ["b", "c"]  # only anchors in both supports
    assert found[0].contribution == np.float32(0.5) * np.float32(0.6)
    assert found[0].url == "u" and (found[0].image_weight, found[0].text_weight) == (
        0.5,
        np.float32(0.6),
    )
    assert len(contributions(anchors, image, text, top=1)) == 1


def test_explanation_text_names_prompt_and_anchors():
    c = Contribution("b", "a red circle", "http://x/1.png", 0.3, 0.5, 0.6)
    text = str(Explanation("circle", "a photo of a circle.", 0.4, [c]))
    assert "'circle'" in text and "a red circle" in text and "75.0%" in text
    assert "[http://x/1.png]" in text
