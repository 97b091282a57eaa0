"""What one evaluation run works on: the anchor table at a version, the evaluations table,
the embedding cache and the folder for plots, with the defaults the flow uses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from asif.evaluation.embedding_cache import EmbeddingCache, default_cache_dir
from asif.evaluation.evaluations_table import DEFAULT_NAME, EvaluationsTable
from asif.store.location import TableLocation
from asif.store.table import AnchorTable


@dataclass(frozen=True)
class EvaluationSetup:
    """An anchor table version and where its evaluation goes."""

    table: AnchorTable
    evaluations: EvaluationsTable
    cache: EmbeddingCache
    plots_dir: Path


def open_setup(
    table_uri: str,
    table_name: str = "anchors",
    version: int | str | None = None,
    *,
    evaluations_uri: str | None = None,
    evaluations_name: str = DEFAULT_NAME,
    cache_dir: str | Path | None = None,
    plots_dir: str | Path | None = None,
    storage_options: Mapping[str, str] | None = None,
) -> EvaluationSetup:
    """Open the table at `version` (None: latest) and the evaluations table (default: in the
    same database); the cache and plots default to folders in a local database.
    `storage_options` default to the environment's (`TableLocation.from_env`)."""
    location = TableLocation.from_env(table_uri, table_name, storage_options)
    table = location.open(version)
    evaluations_uri = evaluations_uri or table_uri
    evaluations = EvaluationsTable.open(evaluations_uri, evaluations_name, location.storage_options)
    if plots_dir is None:
        local = "://" not in evaluations_uri
        base = Path(evaluations_uri) if local else Path.home() / ".cache" / "asif"
        plots_dir = base / "evaluation-plots"
    cache = EmbeddingCache(cache_dir or default_cache_dir(table_uri))
    return EvaluationSetup(table, evaluations, cache, Path(plots_dir))
