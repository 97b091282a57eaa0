from asif.pipeline.summary import BuildSummary, EmbedTotals, event_payload, summary_markdown


def summary(**changes) -> BuildSummary:
    totals = EmbedTotals(embedded=5, batches=2, inserted=4, updated=1, quarantined_batches=1)
    totals.quarantine_paths.append("/q/batch-1")
    values = dict(
        table_uri="db",
        table_name="anchors",
        dataset_uri="db/anchors.lance",
        downloaded=5,
        download_failed=2,
        failures_by_reason={"HTTP Error 404: Not Found": 1, "a | b\nc": 1},
        new_shards=1,
        totals=totals,
        version_before=1,
        version=2,
        rows=5,
        tag="t",
    )
    return BuildSummary(**{**values, **changes})


def test_as_dict_is_flat():
    out = summary().as_dict()
    assert out["inserted"] == 4 and out["quarantine_paths"] == ["/q/batch-1"]
    assert out["changed"] is True and "totals" not in out
    assert summary(version=1).as_dict()["changed"] is False


def test_markdown_and_event_payload():
    text = summary_markdown(summary())
    assert text.startswith("# build-anchors: `db/anchors.lance`\n")
    for line in ("| inserted | 4 |", "| table version | 1 -> 2 |", "| tag | t |"):
        assert line in text
    assert "| a \\| b c | 1 |" in text and "- `/q/batch-1`" in text
    assert "| tag | - |" in summary_markdown(summary(tag=None))
    assert event_payload(summary()) == {
        "table_uri": "db",
        "table_name": "anchors",
        "version": 2,
        "tag": "t",
        "inserted": 4,
        "updated": 1,
        "rows": 5,
    }
