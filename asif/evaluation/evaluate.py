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
from asif.encoders.base import ImageEncoder, TextEncoder
from asif.evaluation.batches import BatchRunner, default_runner
from asif.evaluation.benchmarks import AnyBenchmark, Benchmark
from asif.evaluation.embedding_cache import EmbeddingCache
from asif.evaluation.evaluations_table import EVALUATIONS_SCHEMA, EvaluationsTable, Row
from asif.evaluation.metrics import classification_metrics, recall_at
from asif.evaluation.retrieval_benchmarks import RetrievalBenchmark
from asif.evaluation.scoring import Answers, classify, retrieval_ranks
from asif.model import AsifModel
from asif.model.from_table import model_from_table
from asif.model.settings import DEFAULT_K, DEFAULT_P, ModelSettings
from asif.model.zero_shot import DEFAULT_STRATEGY, Strategy, check_strategy, prompts
from asif.store.table import AnchorTable

CURVE_QUANTILES = tuple(np.round(np.linspace(0.0, 0.95, 20), 2))
"""Default thresholds: these quantiles of the best scores (unknown rate ~0 .. 95%)."""
T = TypeVar("T")
EMPTY_ROW: Row = dict.fromkeys(EVALUATIONS_SCHEMA.names)
"""Every column, so a row holds the other task's metrics as None."""


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
    answers: Answers, targets: np.ndarray, thresholds: Sequence[float] | None = None
) -> UnknownCurve:
    """The curve over `thresholds` (default: quantiles `CURVE_QUANTILES` of the best scores)."""
    best = answers.best
    if thresholds is None:
        thresholds = np.quantile(best, CURVE_QUANTILES) if len(best) else []
    correct = answers.predicted == targets
    acc, unk, wrong = [], [], []
    for t in thresholds:
        known = best >= t
        acc.append(float(np.mean(known & correct)))
        unk.append(float(np.mean(~known)))
        wrong.append(float(np.mean(known & ~correct)))
    return UnknownCurve([float(t) for t in thresholds], acc, unk, wrong)


def settings_key(
    table: AnchorTable,
    benchmark: AnyBenchmark,
    config: EvalConfig,
    thresholds: Sequence[float] | None,
) -> str:
    """A hash of everything that defines one measurement (for retrieval, the template
    strategy and thresholds do not)."""
    if isinstance(benchmark, Benchmark):  # the classes, as named, are part of the question
        question = {"templates": list(benchmark.templates), "classes": benchmark.class_names}
        setting = asdict(config)
        curve = list(thresholds) if thresholds is not None else "auto"
    else:
        question, setting, curve = {}, {**asdict(config), "strategy": None}, "auto"
    spec = {
        "table": table.dataset_uri,
        "version": table.version,
        "benchmark": benchmark.key,
        **question,
        "config": setting,
        "thresholds": curve,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]


def class_accuracy(predicted: np.ndarray, targets: np.ndarray, n_classes: int) -> tuple[list, list]:
    """(accuracy, count) per class; accuracy is NaN for a class with no images."""
    accuracy, count = [], []
    for c in range(n_classes):
        rows = targets == c
        count.append(int(rows.sum()))
        accuracy.append(float(np.mean(predicted[rows] == c)) if rows.any() else np.nan)
    return accuracy, count


def classification_results(
    answers: Answers, benchmark: Benchmark, thresholds: Sequence[float] | None
) -> Row:
    """The row fields of one classification run: CLIP_benchmark's metrics, the unknown
    curve and per-class accuracy."""
    curve = unknown_curve(answers, benchmark.labels, thresholds)
    per_class, counts = class_accuracy(
        answers.predicted, benchmark.labels, len(benchmark.class_names)
    )
    return {
        **classification_metrics(answers.top, benchmark.labels, len(benchmark.class_names)),
        "thresholds": curve.thresholds,
        "curve_accuracy": curve.accuracy,
        "curve_unknown": curve.unknown,
        "curve_wrong": curve.wrong,
        "class_names": benchmark.class_names,
        "class_accuracy": per_class,
        "class_count": counts,
    }


def retrieval_results(image_ranks: np.ndarray, text_ranks: np.ndarray) -> Row:
    """The row fields of one retrieval run: recall@k both ways."""
    images, texts = recall_at(image_ranks), recall_at(text_ranks)
    return {
        **{f"image_retrieval_recall_at_{k}": v for k, v in images.items()},
        **{f"text_retrieval_recall_at_{k}": v for k, v in texts.items()},
    }


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
    benchmarks: Sequence[AnyBenchmark],
    configs: Sequence[EvalConfig] | None = None,
    *,
    thresholds: Sequence[float] | None = None,
    cache: EmbeddingCache,
    evaluations: EvaluationsTable | None = None,
    force: bool = False,
    run_id: str | None = None,
    batch_size: int = 32,
    runner: BatchRunner | None = None,
    progress: bool = False,
) -> list[Row]:
    """Evaluate the table's version on each benchmark (classification or retrieval) under
    each config (default: one `EvalConfig()`, the served settings); returns one row per
    (config, benchmark), in that order.

    With `evaluations`, rows already stored for the same settings are returned as stored and
    not recomputed (unless `force`); new rows are appended to it. Queries are scored in
    batches by `runner` (default: on Ray when RAY_ADDRESS is set, else here); `batch_size`
    is the encoders' batch; `progress` shows bars for embedding and scoring.
    """
    configs = list(configs) if configs else [EvalConfig()]
    run_id = run_id or uuid.uuid4().hex
    keys = {(c, b.key): settings_key(table, b, c, thresholds) for c in configs for b in benchmarks}
    stored = evaluations.find(list(keys.values())) if evaluations and not force else {}
    todo = [c for c in configs if any(keys[c, b.key] not in stored for b in benchmarks)]
    new: dict[str, Row] = {}
    if todo:
        runner = runner or default_runner(progress)
        measure = _Measurement(table, keys, thresholds, cache, run_id, batch_size, runner, progress)
        new = measure(benchmarks, todo)
        new = {key: row for key, row in new.items() if key not in stored}
        if evaluations is not None:
            evaluations.add(list(new.values()))
    return [{**stored, **new}[keys[c, b.key]] for c in configs for b in benchmarks]


@dataclass(frozen=True)
class _Measurement:
    """One evaluation run's context: what every row it measures shares."""

    table: AnchorTable
    keys: dict
    thresholds: Sequence[float] | None
    cache: EmbeddingCache
    run_id: str
    batch_size: int
    runner: BatchRunner
    progress: bool

    def __call__(self, benchmarks: Sequence[AnyBenchmark], configs: list[EvalConfig]) -> dict:
        base = model_from_table(self.table)
        models: dict[tuple, AsifModel] = {}
        for c in configs:  # before embedding anything, so bad settings fail fast
            if _variant_key(c) not in models:
                models[_variant_key(c)] = _variant(base, c)
        names = base.settings  # each encoder loaded at most once a run, and only on a miss
        encoders = (
            cache_loader(load_image_encoder, names.image_encoder),
            cache_loader(load_text_encoder, names.text_encoder),
        )
        embedded = {b.key: self._embed(b, names, *encoders) for b in benchmarks}
        tags = ",".join(sorted(t for t, v in self.table.tags().items() if v == self.table.version))
        common = {
            "run_id": self.run_id,
            "table_uri": self.table.uri,
            "table_name": self.table.name,
            "table_version": self.table.version,
            "table_tags": tags or None,
            "table_rows": len(base),
            "image_encoder": base.settings.image_encoder,
            "text_encoder": base.settings.text_encoder,
        }
        rows: dict[str, Row] = {}
        for variant, model in models.items():
            same = [c for c in configs if _variant_key(c) == variant]
            for b in benchmarks:
                images, texts, embed_seconds = embedded[b.key]
                start = time.perf_counter()
                results = self._results(model, b, same, images, texts)
                for c, result in zip(same, results, strict=True):
                    rows[self.keys[c, b.key]] = {
                        **EMPTY_ROW,
                        **common,
                        "settings_key": self.keys[c, b.key],
                        "evaluated_at": datetime.now(UTC),
                        "study": c.study,
                        "task": b.task,
                        "n_anchors": len(model),
                        "subset_seed": c.subset_seed if c.n_anchors is not None else None,
                        "k": model.settings.k,
                        "p": model.settings.p,
                        "strategy": c.strategy if isinstance(b, Benchmark) else None,
                        "benchmark": b.name,
                        "benchmark_key": b.key,
                        "split": b.split,
                        "n_images": len(b),
                        **_sizes(b),
                        **result,
                        "embed_seconds": embed_seconds,
                        "asif_seconds": time.perf_counter() - start,
                    }
        return rows

    def _embed(
        self,
        b: AnyBenchmark,
        names: ModelSettings,
        image_encoder: Callable[[], ImageEncoder],
        text_encoder: Callable[[], TextEncoder],
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """The benchmark's image embeddings and its prompts' or captions' (cached)."""
        start = time.perf_counter()
        images = self.cache.image_embeddings(
            b, names.image_encoder, image_encoder, self.batch_size, self.progress
        )
        texts = prompts(b.class_names, b.templates) if isinstance(b, Benchmark) else b.captions
        text_embeddings = self.cache.text_embeddings(texts, names.text_encoder, text_encoder)
        return images, text_embeddings, time.perf_counter() - start

    def _results(
        self,
        model: AsifModel,
        b: AnyBenchmark,
        configs: list[EvalConfig],
        images: np.ndarray,
        texts: np.ndarray,
    ) -> list[Row]:
        """Each config's result fields on `b` (configs share the model: same anchors, k, p)."""
        if isinstance(b, RetrievalBenchmark):
            ranked = retrieval_ranks(model, images, texts, b.caption_image, self.runner)
            return [retrieval_results(*ranked)] * len(configs)
        classifiers = [
            model.zero_shot_classifier(b.class_names, b.templates, c.strategy, texts)
            for c in configs
        ]
        answers = classify(model, classifiers, images, self.runner)
        return [classification_results(a, b, self.thresholds) for a in answers]


def _sizes(b: AnyBenchmark) -> Row:
    if isinstance(b, Benchmark):
        return {"n_classes": len(b.class_names), "n_templates": len(b.templates)}
    return {"n_texts": len(b.captions)}


def _variant_key(config: EvalConfig) -> tuple:
    """What makes two configs share a model (and its image relative representations)."""
    return config.n_anchors, config.subset_seed, config.k, config.p


def cache_loader(load: Callable[[str], T], name: str) -> Callable[[], T]:
    """A zero-argument loader of encoder `name`, loading it at most once."""
    return functools.cache(lambda: load(name))
