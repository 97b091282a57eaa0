import json

import pytest
from PIL import Image

from asif.evaluation.plots import anchors_plot, curve_plot, kp_heatmap, line_plot, unknown_plot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _rows():
    rows = []
    for n, seed, acc1 in [(10, 0, 0.3), (10, 1, 0.5), (100, 0, 0.7), (100, 1, 0.8)]:
        rows.append(
            dict(
                benchmark="fm", strategy="max", n_anchors=n, subset_seed=seed, k=5, p=8.0,
                acc1=acc1, table_version=3, curve_unknown=[0.0, 0.5], curve_accuracy=[acc1, 0.1],
            )
        )  # fmt: skip
    return rows


def _check_png(path, size=(640, 420)):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == size


def test_line_plot_writes_png_and_series(tmp_path):
    plot = line_plot(
        {"b": {"x": [1, 2], "y": [3, 4]}}, tmp_path / "sub" / "p.png", title="T", xlabel="x",
        ylabel="y",
    )  # fmt: skip
    _check_png(plot.path)
    assert json.loads(plot.sidecar.read_text())["series"] == {"b": {"x": [1, 2], "y": [3, 4]}}


def test_anchors_plot_averages_seeds(tmp_path):
    plot = anchors_plot(_rows(), tmp_path / "anchors.png")
    _check_png(plot.path)
    assert plot.series == {"fm (max)": {"x": [10, 100], "y": [0.4, 0.75]}}
    assert json.loads(plot.sidecar.read_text())["series"] == plot.series


def test_kp_and_curve_plots(tmp_path):
    rows = _rows()
    rows[2]["p"] = rows[3]["p"] = 4.0
    kp = kp_heatmap(rows, tmp_path / "kp.png")
    assert sorted(kp.series) == ["fm p=4", "fm p=8"]
    assert kp.series["fm p=4"]["y"] == [0.75]
    curve = curve_plot(rows[:1], tmp_path / "curve.png", "curve")
    _check_png(curve.path)
    assert list(curve.series.values()) == [{"x": [0.0, 0.5], "y": [0.3, 0.1]}]
    assert list(curve.series) == ["fm v3 max k=5 p=8"]


def test_kp_heatmap_draws_each_benchmarks_grid(tmp_path):
    rows = [
        dict(benchmark=b, k=k, p=p, acc1=acc)
        for b, base in (("fm", 0.5), ("digits", 0.2))
        for (k, p), acc in (((10, 1.0), base), ((10, 8.0), base + 0.1), ((50, 1.0), base + 0.2))
    ]
    plot = kp_heatmap(rows, tmp_path / "kp.png")
    _check_png(plot.path, (1040, 420))  # one panel per benchmark
    assert plot.series["fm p=1"] == {"x": [10, 50], "y": [0.5, 0.7]}
    assert plot.series["digits p=8"] == {"x": [10], "y": [pytest.approx(0.3)]}
    assert json.loads(plot.sidecar.read_text())["series"]["fm p=8"] == {"x": [10], "y": [0.6]}


def test_unknown_plot_has_the_three_rates_against_the_threshold(tmp_path):
    row = dict(
        benchmark="fm", thresholds=[0.0, 0.1], curve_accuracy=[0.8, 0.5],
        curve_unknown=[0.0, 0.4], curve_wrong=[0.2, 0.1],
    )  # fmt: skip
    plot = unknown_plot([row], tmp_path / "unknown.png", "unknown")
    _check_png(plot.path)
    assert plot.xlabel == "threshold"
    assert plot.series == {
        "fm accuracy": {"x": [0.0, 0.1], "y": [0.8, 0.5]},
        "fm unknown": {"x": [0.0, 0.1], "y": [0.0, 0.4]},
        "fm wrong": {"x": [0.0, 0.1], "y": [0.2, 0.1]},
    }
