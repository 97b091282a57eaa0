"""ImageNet-1k's readable class names, from the synset metadata that timm ships.

Each class is named by the first lemma of its WordNet synset ("n01440764": "tench, Tinca
tinca" -> "tench"); the four synsets whose first lemma another class shares get names that
tell them apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from types import MappingProxyType

AMBIGUOUS = {
    "n02012849": "crane bird",  # crane: large long-necked wading bird
    "n03126707": "construction crane",  # crane: lifts and moves heavy objects
    "n03710637": "leotard",  # maillot: tights for dancers or gymnasts
    "n03710721": "one-piece bathing suit",  # maillot, tank suit
}


@cache
def imagenet_class_names() -> Mapping[str, str]:
    """The 1000 names, keyed both by wnid ("n01440764") and by class index ("0")."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    names: dict[str, str] = {}
    for index, wnid in enumerate(info.label_names()):
        name = AMBIGUOUS.get(wnid) or info.index_to_description(index).split(",")[0].strip()
        names[wnid] = names[str(index)] = name
    return MappingProxyType(names)
