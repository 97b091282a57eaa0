"""Readable class names for ImageNet-1k (and Pets): CLIP's curated names by default, or the
WordNet lemmas of the synset metadata that timm ships.

CLIP's names are what published zero-shot tables use, so accuracies are comparable with them.
`asif/evaluation/data/clip_classnames.json` is vendored from LAION-AI/CLIP_benchmark
(`clip_benchmark/datasets/en_classnames.json` at 48de38c; MIT License, Copyright (c) 2022
Mehdi Cherti), its "imagenet1k" and "pets" lists, in the datasets' class index order.

The WordNet names take each synset's first lemma ("n01440764": "tench, Tinca tinca" ->
"tench"); the four synsets whose first lemma another class shares get names that tell them
apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from types import MappingProxyType

AMBIGUOUS = {
    "n02012849": "crane bird",  # crane: large long-necked wading bird
    "n03126707": "construction crane",  # crane: lifts and moves heavy objects
    "n03710637": "leotard",  # maillot: tights for dancers or gymnasts
    "n03710721": "one-piece bathing suit",  # maillot, tank suit
}
NAME_SOURCES = ("clip", "wordnet")
"""The `source`s of `imagenet_names`."""


@cache
def _clip_lists() -> Mapping[str, tuple[str, ...]]:
    text = files("asif.evaluation").joinpath("data/clip_classnames.json").read_text("utf-8")
    return MappingProxyType({k: tuple(v) for k, v in json.loads(text).items()})


def clip_class_names(dataset: str) -> list[str]:
    """CLIP_benchmark's curated names of `dataset` ("imagenet1k", "pets") by class index."""
    lists = _clip_lists()
    if dataset not in lists:
        raise ValueError(f"no CLIP class names for {dataset!r}; one of {sorted(lists)}")
    return list(lists[dataset])


@cache
def imagenet_class_names() -> Mapping[str, str]:
    """The 1000 WordNet names, keyed both by wnid ("n01440764") and by class index ("0")."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    names: dict[str, str] = {}
    for index, wnid in enumerate(info.label_names()):
        name = AMBIGUOUS.get(wnid) or info.index_to_description(index).split(",")[0].strip()
        names[wnid] = names[str(index)] = name
    return MappingProxyType(names)


@cache
def imagenet_clip_names() -> Mapping[str, str]:
    """CLIP's 1000 curated names, keyed both by wnid and by class index."""
    from timm.data import ImageNetInfo

    wnids = ImageNetInfo().label_names()
    names: dict[str, str] = {}
    for index, (wnid, name) in enumerate(zip(wnids, clip_class_names("imagenet1k"), strict=True)):
        names[wnid] = names[str(index)] = name
    return MappingProxyType(names)


def imagenet_names(source: str = "clip") -> Mapping[str, str]:
    """ImageNet's names from `source`: "clip" (curated, the default) or "wordnet" (lemmas)."""
    if source not in NAME_SOURCES:
        raise ValueError(f"ImageNet class names come from one of {NAME_SOURCES}, not {source!r}")
    return imagenet_clip_names() if source == "clip" else imagenet_class_names()
