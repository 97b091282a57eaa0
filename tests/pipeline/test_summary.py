from pathlib import Path

from asif.pipeline.summary import (
    BuildSummary,
    EmbedTotals,
    absolute_uri,
    event_payload,
    summary_markdown,
    summary_text,
)

SUBSET = {"url_list.file": "cc12m.tsv", "url_list.subset": "sample=4", "url_list.seed": "7"}


def summary(**changes) -> BuildSummary:
    totals = EmbedTotals(embedded=5, batches=2, inserted=4, updated=1, quarantined_batches=1)
    totals.quarantine_paths.append("/q/batch-1")
    values = dict(
        table_uri="/data/db",
        table_name="anchors",
        dataset_uri="/data/db/anchors.lance",
        url_list="cc12m.tsv",
        new_downloaded=3,
        new_download_failed=1,
        skipped_rows=2,
        already_downloaded=2,
        duplicates=0,
        downloaded=5,
        download_failed=2,
        failures_by_reason={"HTTP Error 404: Not Found": 1, "a | b\nc": 1},
        new_shards=1,
        totals=totals,
        version_before=1,
        version=2,
        rows=5,
        subset=SUBSET,
        tag="t",
    )
    return BuildSummary(**{**values, **changes})


def test_as_dict_is_flat():
    out = summary().as_dict()
    assert out["inserted"] == 4 and out["quarantine_paths"] == ["/q/batch-1"]
    assert out["changed"] is True and "totals" not in out and out["subset"] == SUBSET
    assert summary(version=1).as_dict()["changed"] is False


def test_from_dict_reads_what_as_dict_wrote():
    """What `asif build-anchors` does with the flow's return value."""
    built = summary(download_seconds=1.5, embed_seconds=2.5)
    assert BuildSummary.from_dict(built.as_dict()) == built


def test_markdown_text_and_event_payload():
    text = summary_markdown(summary())
    assert text.startswith("# build-anchors: `/data/db/anchors.lance`\n")
    for line in (
        "| inserted | 4 |",
        "| table version | 1 -> 2 |",
        "| tag | t |",
        "| downloaded pairs (this run) | 3 |",
        "| downloaded pairs (work dir) | 5 |",
        "| url_list.subset | sample=4 |",
    ):
        assert line in text
    assert "| a \\| b c | 1 |" in text and "- `/q/batch-1`" in text
    assert "| tag | - |" in summary_markdown(summary(tag=None))
    plain = summary_text(summary()).splitlines()
    assert plain[0].split() == ["table", "/data/db/anchors.lance"]
    assert ["inserted", "4"] in [line.split() for line in plain]
    assert event_payload(summary()) == {
        "table_uri": "/data/db",
        "table_name": "anchors",
        "version": 2,
        "version_before": 1,
        "tag": "t",
        "inserted": 4,
        "updated": 1,
        "rows": 5,
        "url_list": "cc12m.tsv",
        "subset": SUBSET,
    }


def test_absolute_uri_resolves_local_paths_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_uri("asif-data/lancedb") == str(tmp_path / "asif-data" / "lancedb")
    assert absolute_uri("~/db") == str(Path.home() / "db")
    for uri in ("s3://bucket/prefix", "gs://b/p", "file:///data/db", "memory://x"):
        assert absolute_uri(uri) == uri
