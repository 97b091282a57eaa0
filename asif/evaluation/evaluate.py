"""Zero-shot evaluation of one anchor table version: `evaluate_version` -> evaluations rows.

Benchmark and prompt embeddings come from the `EmbeddingCache`; only the ASIF step (relative
representations and scores) runs per anchor version and setting. With an `EvaluationsTable`,
settings already measured for this version are read back instead of recomputed (unless
`force`), and new rows are appended. Unless a config says otherwise, a version is measured
with the settings every model starts with (`asif.model.settings`), which are the ones
`asif serve` serves.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np

from asif.encoders import load_image_encoder, load_text_encoder
from asif.evaluation.benchmarks import Benchmark
from asif.evaluation.embedding_cache import EmbeddingCache
from asif.evaluation.evaluations_table import EvaluationsTable, Row
from asif.model import AsifModel
from asif.model.from_table import model_from_table
from asif.model.relative import SparseRelative
from asif.model.settings import DEFAULT_K, DEFAULT_P
from asif.model.zero_shot import DEFAULT_STRATEGY, Prediction, Strategy, check_strategy, prompts
from asif.store.table import AnchorTable

CURVE_QUANTILES = tuple(np.round(np.linspace(0.0, 0.95, 20), 2))
"""Default thresholds: these quantiles of the best scores (unknown rate ~0 .. 95%)."""
T = TypeVar("T")


@dataclass(frozen=True)
class EvalConfig:
    """One measurement setting: the model's k and p (by default the model defaults, so what
    is measured is what is served), the template strategy, and the anchors used
    (`n_anchors` None: every anchor of the version; else a random subset drawn with
    `subset_seed`). `study` names the experiment the row belongs to."""

    k: int = DEFAULT_K
    p: float = DEFAULT_P
    strategy: Strategy = DEFAULT_STRATEGY
    n_anchors: int | None = None
    subset_seed: int = 0
    study: str = "main"

    def __post_init__(self) -> None:
        check_strategy(self.strategy)
        if type(self.p) is int:  # p=8 and p=8.0: one settings key (values checked on use)
            object.__setattr__(self, "p", float(self.p))

    @classmethod
    def overriding(
        cls, k: int | None = None, p: float | None = None, strategy: Strategy = DEFAULT_STRATEGY
    ) -> EvalConfig:
        """The default config with the settings that are not None replaced: how a caller
        whose parameters default to "the model's setting" (None) builds its config."""
        return cls(DEFAULT_K if k is None else k, DEFAULT_P if p is None else p, strategy)


@dataclass(frozen=True)
class UnknownCurve:
    """Accuracy, unknown and wrong rates when answering "unknown" below each threshold."""

    thresholds: list[float]
    accuracy: list[float]
    unknown: list[float]
    wrong: list[float]


def unknown_curve(
    prediction: Prediction, targets: np.ndarray, thresholds: Sequence[float] | None = None
) -> UnknownCurve:
    """The curve over `thresholds` (default: quantiles `CURVE_QUANTILES` of the best scores)."""
    best = prediction.scores.max(axis=1)
    if thresholds is None:
        thresholds = np.quantile(best, CURVE_QUANTILES) if len(best) else []
    correct = prediction.scores.argmax(axis=1) == targets
    acc, unk, wrong = [], [], []
    for t in thresholds:
        known = best >= t
        acc.append(float(np.mean(known & correct)))
        unk.append(float(np.mean(~known)))
        wrong.append(float(np.mean(known & ~correct)))
    return UnknownCurve([float(t) for t in thresholds], acc, unk, wrong)


def settings_key(
    table: AnchorTable,
    benchmark: Benchmark,
    config: EvalConfig,
    thresholds: Sequence[float] | None,
) -> str:
    """A hash of everything that defines one measurement."""
    spec = {
        "table": table.dataset_uri,
        "version": table.version,
        "benchmark": benchmark.key,
        "templates": list(benchmark.templates),
        "config": asdict(config),
        "thresholds": list(thresholds) if thresholds is not None else "auto",
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]


def class_accuracy(prediction: Prediction, targets: np.ndarray) -> tuple[list, list]:
    """(accuracy, count) per class; accuracy is NaN for a class with no images."""
    accuracy, count = [], []
    for c in range(len(prediction.class_names)):
        rows = targets == c
        count.append(int(rows.sum()))
        accuracy.append(float(np.mean(prediction.label_ids[rows] == c)) if rows.any() else np.nan)
    return accuracy, count


def anchor_subset(model: AsifModel, n_anchors: int | None, seed: int) -> AsifModel:
    """The model over `n_anchors` anchors drawn at random (seeded), or itself."""
    if n_anchors is None or n_anchors >= len(model):
        return model
    rows = np.sort(np.random.default_rng(seed).choice(len(model), n_anchors, replace=False))
    return model.with_anchors(
        model.anchors.take(rows), model.exact_scan("an anchor subset").take(rows)
    )


def _variant(base: AsifModel, config: EvalConfig) -> AsifModel:
    """`base` over the config's anchors, with its k and p (checked by `ModelSettings`)."""
    model = anchor_subset(base, config.n_anchors, config.subset_seed)
    return model.with_settings(k=config.k, p=config.p)


def evaluate_version(
    table: AnchorTable,
    benchmarks: Sequence[Benchmark],
    configs: Sequence[EvalConfig] | None = None,
    *,
    thresholds: Sequence[float] | None = None,
    cache: EmbeddingCache,
    evaluations: EvaluationsTable | None = None,
    force: bool = False,
    run_id: str | None = None,
    batch_size: int = 32,
) -> list[Row]:
    """Evaluate the table's version on each benchmark under each config (default: one
    `EvalConfig()`, the served settings); returns one row per (config, benchmark), in that
    order.

    With `evaluations`, rows already stored for the same settings are returned as stored and
    not recomputed (unless `force`); new rows are appended to it.
    """
    configs = list(configs) if configs else [EvalConfig()]
    run_id = run_id or uuid.uuid4().hex
    keys = {(c, b.key): settings_key(table, b, c, thresholds) for c in configs for b in benchmarks}
    stored = evaluations.find(list(keys.values())) if evaluations and not force else {}
    todo = [c for c in configs if any(keys[c, b.key] not in stored for b in benchmarks)]
    new: dict[str, Row] = {}
    if todo:
        new = _measure(table, benchmarks, todo, keys, thresholds, cache, run_id, batch_size)
        new = {key: row for key, row in new.items() if key not in stored}
        if evaluations is not None:
            evaluations.add(list(new.values()))
    return [{**stored, **new}[keys[c, b.key]] for c in configs for b in benchmarks]


def _measure(
    table: AnchorTable,
    benchmarks: Sequence[Benchmark],
    configs: Sequence[EvalConfig],
    keys: dict,
    thresholds: Sequence[float] | None,
    cache: EmbeddingCache,
    run_id: str,
    batch_size: int,
) -> dict[str, Row]:
    base = model_from_table(table)
    models: dict[tuple, AsifModel] = {}
    for c in configs:  # before embedding anything, so bad settings fail fast
        if _variant_key(c) not in models:
            models[_variant_key(c)] = _variant(base, c)
    names = base.settings
    image_encoder = cache_loader(load_image_encoder, names.image_encoder)
    text_encoder = cache_loader(load_text_encoder, names.text_encoder)
    embedded = {}
    for b in benchmarks:
        start = time.perf_counter()
        images = cache.image_embeddings(b, names.image_encoder, image_encoder, batch_size)
        texts = cache.text_embeddings(
            prompts(b.class_names, b.templates), names.text_encoder, text_encoder
        )
        embedded[b.key] = (images, texts, time.perf_counter() - start)
    tags = ",".join(sorted(t for t, v in table.tags().items() if v == table.version))
    common = {
        "run_id": run_id,
        "table_uri": table.uri,
        "table_name": table.name,
        "table_version": table.version,
        "table_tags": tags or None,
        "table_rows": len(base),
        "image_encoder": names.image_encoder,
        "text_encoder": names.text_encoder,
    }
    rows: dict[str, Row] = {}
    relatives: dict[tuple, SparseRelative] = {}
    for c in configs:
        variant = _variant_key(c)
        model = models[variant]
        for b in benchmarks:
            images, texts, embed_seconds = embedded[b.key]
            start = time.perf_counter()
            if (variant, b.key) not in relatives:
                relatives[variant, b.key] = model.image_relative(images)
            classifier = model.zero_shot_classifier(b.class_names, b.templates, c.strategy, texts)
            prediction = classifier.predict(relatives[variant, b.key])
            curve = unknown_curve(prediction, b.labels, thresholds)
            per_class, counts = class_accuracy(prediction, b.labels)
            rows[keys[c, b.key]] = {
                **common,
                "settings_key": keys[c, b.key],
                "evaluated_at": datetime.now(UTC),
                "study": c.study,
                "n_anchors": len(model),
                "subset_seed": c.subset_seed if c.n_anchors is not None else None,
                "k": model.settings.k,
                "p": model.settings.p,
                "strategy": c.strategy,
                "benchmark": b.name,
                "benchmark_key": b.key,
                "split": b.split,
                "n_images": len(b),
                "n_classes": len(b.class_names),
                "n_templates": len(b.templates),
                "top1": prediction.accuracy(b.labels, 1),
                "top5": prediction.accuracy(b.labels, 5),
                "thresholds": curve.thresholds,
                "curve_accuracy": curve.accuracy,
                "curve_unknown": curve.unknown,
                "curve_wrong": curve.wrong,
                "class_names": b.class_names,
                "class_accuracy": per_class,
                "class_count": counts,
                "embed_seconds": embed_seconds,
                "asif_seconds": time.perf_counter() - start,
            }
    return rows


def _variant_key(config: EvalConfig) -> tuple:
    """What makes two configs share a model (and its image relative representations)."""
    return config.n_anchors, config.subset_seed, config.k, config.p


def cache_loader(load: Callable[[str], T], name: str) -> Callable[[], T]:
    """A zero-argument loader of encoder `name`, loading it at most once."""
    return functools.cache(lambda: load(name))
