"""The README's main job: the demo's pairs through download, embedding, validation, commit
and evaluation, from a 127.0.0.1 server."""

from flows.demo import run_pipeline_demo


def test_the_pipeline_demo_builds_evaluates_and_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    table = str(tmp_path / "lancedb")
    first = run_pipeline_demo(
        table, tmp_path / "pairs", image_encoder="efficientnet-lite0", anchors_per_class=3,
        test_per_class=4,
    )  # fmt: skip
    lines = first.url_list.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 30 and all(line.count("\t") == 1 for line in lines)
    assert lines[0].startswith("http://127.0.0.1:")  # url TAB caption, no header
    assert first.summary.totals.inserted == 30 and first.evaluation["n_anchors"] == 30
    assert first.evaluation["n_images"] == 40 and first.evaluation["acc1"] > 0.1  # chance 0.1
    assert first.explanation.anchors
    report = first.report()
    assert "top-1" in report and f"asif serve --table {table}" in report

    again = run_pipeline_demo(
        table, tmp_path / "pairs", image_encoder="efficientnet-lite0", anchors_per_class=3,
        test_per_class=4,
    )  # fmt: skip
    assert again.summary.totals.inserted == 0 and again.summary.version == first.summary.version
