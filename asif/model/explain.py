"""Explanations: which anchor pairs gave an image-text score, by r_i(x) * r_i(y)."""

from __future__ import annotations

from dataclasses import dataclass

from asif.model.anchor_set import AnchorSet
from asif.model.relative import SparseRelative


@dataclass(frozen=True)
class Contribution:
    """One anchor pair's share of an image-text score: r_i(x) * r_i(y)."""

    anchor_id: str
    caption: str
    url: str | None
    contribution: float
    image_weight: float
    text_weight: float


@dataclass(frozen=True)
class Explanation:
    """Why an image got a label: the anchor pairs that contributed most to the score."""

    label: str
    prompt: str
    score: float
    anchors: list[Contribution]

    def __str__(self) -> str:
        lines = [f"{self.label!r} (prompt {self.prompt!r}) scored {self.score:.4f} because of:"]
        for a in self.anchors:
            share = a.contribution / self.score if self.score > 0 else 0.0
            where = f" [{a.url}]" if a.url else ""
            lines.append(f"  {a.contribution:.4f} ({share:5.1%})  {a.caption!r}{where}")
        return "\n".join(lines)


def contributions(
    anchors: AnchorSet, r_image: SparseRelative, r_text: SparseRelative, top: int = 5
) -> list[Contribution]:
    """The `top` anchors by r_i(x) * r_i(y) for one image and one text vector (ties: lower row)."""
    img = dict(zip(r_image.indices[0].tolist(), r_image.values[0].tolist(), strict=True))
    pairs = zip(r_text.indices[0].tolist(), r_text.values[0].tolist(), strict=True)
    txt = {i: v for i, v in pairs if v}
    shared = sorted(
        ((img[i] * txt[i], i) for i in img.keys() & txt.keys() if img[i] * txt[i] > 0),
        key=lambda t: (-t[0], t[1]),
    )[:top]
    a = anchors
    return [Contribution(a.ids[i], a.captions[i], a.urls[i], c, img[i], txt[i]) for c, i in shared]
