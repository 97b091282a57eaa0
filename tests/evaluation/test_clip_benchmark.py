"""Evaluation rows as CLIP_benchmark's result JSON and `clip_benchmark build` CSV; the paper's
table and the files one evaluation leaves."""

from __future__ import annotations

import csv
import json
import math

import pytest

from asif.evaluation.clip_benchmark import build_csv, file_name, record, write_results
from asif.evaluation.evaluate import EMPTY_ROW
from asif.evaluation.exports import export
from asif.evaluation.paper import PAPER_ACC1, paper_table

COMMON = dict(
    table_uri="/data/lancedb", table_name="anchors", table_version=7, table_tags="v1",
    n_anchors=1000, k=800, p=16.0, image_encoder="efficientnet-lite2",
    text_encoder="sentence-transformers/all-MiniLM-L6-v2", split="test", n_images=50,
    benchmark_key="key", evaluated_at=None, thresholds=[0.0, 0.5], curve_accuracy=[0.5, 0.2],
    curve_unknown=[0.0, 0.7], curve_wrong=[0.5, 0.1],
)  # fmt: skip


def classification_row(benchmark="cifar100", acc1=0.6, acc5=0.9):
    return {
        **EMPTY_ROW, **COMMON, "benchmark": benchmark, "task": "zeroshot_classification",
        "strategy": "max", "acc1": acc1, "acc5": acc5, "mean_per_class_recall": 0.55,
    }  # fmt: skip


def retrieval_row():
    recalls = {
        f"{side}_retrieval_recall_at_{k}": value
        for side, base in (("image", 0.1), ("text", 0.2))
        for k, value in zip((1, 5, 10), (base, base + 0.3, base + 0.5), strict=True)
    }
    return {**EMPTY_ROW, **COMMON, "benchmark": "flickr30k", "task": "zeroshot_retrieval",
            "n_texts": 250, **recalls}  # fmt: skip


def test_classification_record_has_clip_benchmarks_keys_and_ours():
    result = record(classification_row())
    assert list(result)[:6] == ["dataset", "model", "pretrained", "task", "metrics", "language"]
    assert result["dataset"] == "cifar100" and result["language"] == "en"
    assert result["model"] == "asif:efficientnet-lite2+sentence-transformers/all-MiniLM-L6-v2"
    assert result["pretrained"] == "anchors-v7"
    assert result["task"] == "zeroshot_classification"
    assert result["metrics"] == {"acc1": 0.6, "acc5": 0.9, "mean_per_class_recall": 0.55}
    assert (result["table_version"], result["table_tags"], result["n_anchors"]) == (7, "v1", 1000)
    assert (result["k"], result["p"], result["image_encoder"]) == (800, 16.0, "efficientnet-lite2")


def test_retrieval_record_uses_clip_benchmarks_metric_names():
    result = record(retrieval_row())
    assert result["task"] == "zeroshot_retrieval" and result["n_texts"] == 250
    assert result["metrics"] == pytest.approx(
        {
            "image_retrieval_recall@1": 0.1, "image_retrieval_recall@5": 0.4,
            "image_retrieval_recall@10": 0.6, "text_retrieval_recall@1": 0.2,
            "text_retrieval_recall@5": 0.5, "text_retrieval_recall@10": 0.7,
        }
    )  # fmt: skip


def test_files_named_as_clip_benchmark_names_them_and_merged_as_build_does(tmp_path):
    rows = [classification_row(acc5=None), retrieval_row()]
    paths = write_results(rows, tmp_path / "out")
    assert [p.name for p in paths] == [
        "cifar100_anchors-v7_asif_efficientnet-lite2_sentence-transformers_all-MiniLM-L6-v2"
        "_en_zeroshot_classification.json",
        "flickr30k_anchors-v7_asif_efficientnet-lite2_sentence-transformers_all-MiniLM-L6-v2"
        "_en_zeroshot_retrieval.json",
    ]
    stored = json.loads(paths[0].read_text())
    assert math.isnan(stored["metrics"]["acc5"])  # fewer than 5 classes: NaN, as theirs
    out = build_csv([tmp_path / "out"], tmp_path / "benchmark.csv")
    with out.open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == 2
    first, second = table
    assert first["acc1"] == "0.6" and first["acc5"] == "nan" and first["dataset"] == "cifar100"
    assert first["image_retrieval_recall@1"] == ""  # a column of the other task
    assert second["text_retrieval_recall@10"] == str(0.2 + 0.5)
    assert first["model_fullname"] == f"{first['model']} anchors-v7"
    assert "metrics" not in first and first["table_version"] == "7"


def test_two_settings_of_one_benchmark_refused(tmp_path):
    rows = [classification_row(), {**classification_row(), "k": 50}]
    assert file_name(record(rows[0])) == file_name(record(rows[1]))
    with pytest.raises(ValueError, match="export one setting at a time"):
        write_results(rows, tmp_path)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_paper_table_keeps_its_layout_and_adds_other_benchmarks():
    rows = [classification_row("pets", acc1=0.42), classification_row("fashion-mnist", 0.8)]
    lines = paper_table(rows).splitlines()
    names = [line.split("|")[1].strip() for line in lines[2:]]
    assert names == [*PAPER_ACC1, "fashion-mnist"]
    pets = lines[2 + names.index("pets")]
    assert "| 42.0 | 71.5 |" in pets and "| 50 | 1,000 |" in pets
    assert "not evaluated (--benchmark imagenet=ROOT) | 55.4 |" in lines[2]
    assert lines[-1].endswith("| 80.0 | - |")


def test_export_writes_results_csv_plots_and_paper(tmp_path):
    rows = [classification_row("pets"), retrieval_row()]
    exported = export(rows, tmp_path, paper=True)
    assert len(exported.results) == 2 and exported.csv == tmp_path / "results.csv"
    assert [p.path.name for p in exported.plots] == ["unknown.png", "paper.png"]
    unknown = json.loads(exported.plots[0].sidecar.read_text())["series"]
    assert sorted(unknown) == ["pets accuracy", "pets unknown", "pets wrong"]  # no retrieval
    paper = json.loads(exported.plots[1].sidecar.read_text())["series"]
    assert paper["ours"] == {"x": [2.0], "y": [60.0]}  # pets, the third paper benchmark
    assert paper["paper"] == {"x": [0.0, 1.0, 2.0, 3.0], "y": list(PAPER_ACC1.values())}
    assert exported.paper_path is not None
    assert exported.paper_path.read_text().strip() == exported.paper
