"""Zero-shot evaluation of anchor table versions: benchmarks, cached embeddings, the
`evaluations` LanceDB table, studies, plots and version comparisons. See docs/evaluate.md."""

from asif.evaluation.benchmarks import BENCHMARKS, Benchmark, load_benchmark
from asif.evaluation.compare import Comparison, compare_rows, compare_with_previous
from asif.evaluation.embedding_cache import EmbeddingCache
from asif.evaluation.evaluate import EvalConfig, evaluate_version
from asif.evaluation.evaluations_table import EVALUATIONS_SCHEMA, EvaluationsTable
from asif.evaluation.run import EvaluationSetup, open_setup
from asif.evaluation.studies import STUDIES, StudyOptions, run_study

__all__ = [
    "BENCHMARKS",
    "EVALUATIONS_SCHEMA",
    "STUDIES",
    "Benchmark",
    "Comparison",
    "EmbeddingCache",
    "EvalConfig",
    "EvaluationSetup",
    "EvaluationsTable",
    "StudyOptions",
    "compare_rows",
    "compare_with_previous",
    "evaluate_version",
    "load_benchmark",
    "open_setup",
    "run_study",
]
