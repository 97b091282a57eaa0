"""Zero-shot classifiers from form fields, cached on the snapshot they were made from.

Building one embeds every prompt, so each snapshot keeps the classifiers it made; a new
table version starts with an empty cache (its prompt representations differ). Templates,
strategy and labels are checked by `asif.model.zero_shot`, so a refused one is never cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import Form

from asif.model.zero_shot import (
    DEFAULT_TEMPLATES,
    ZeroShotClassifier,
    check_strategy,
    parse_labels,
)
from asif.serve.dependencies import ServiceSettings
from asif.serve.live_model import Snapshot

Labels = Annotated[
    list[str], Form(description="class names: repeat the field or separate them with commas")
]
Templates = Annotated[
    list[str] | None, Form(description="prompt templates with {} for the class name")
]


def snapshot_classifier(
    snapshot: Snapshot,
    labels: Sequence[str],
    templates: Sequence[str] | None,
    strategy: str,
    limits: ServiceSettings,
) -> ZeroShotClassifier:
    """The snapshot's classifier for these form fields, within `limits`; the cache is
    emptied at `limits.classifier_cache`."""
    chosen = check_strategy(strategy)
    names, prompts = parse_labels(labels), list(templates or DEFAULT_TEMPLATES)
    limits.check_texts("labels", names, limits.max_labels)
    limits.check_texts("templates", prompts, limits.max_templates)
    key = (tuple(names), tuple(prompts), chosen)
    cache = snapshot.classifiers
    if key not in cache:
        if len(cache) >= limits.classifier_cache:
            cache.clear()
        cache[key] = snapshot.model.zero_shot_classifier(names, prompts, chosen)
    return cache[key]
