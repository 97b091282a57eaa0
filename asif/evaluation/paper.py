"""The ASIF paper's zero-shot table (Norelli et al., NeurIPS 2023, Table 1) beside ours.

The paper's figures are top-1 accuracy (%) with 1.6M CC12M anchor pairs, a supervised
ViT-B/16 image encoder and a sentence-transformers text encoder. `paper_table` puts a
version's acc1 next to them, one row per paper benchmark (those not evaluated say so, so
the table keeps its layout) and one per other benchmark evaluated; `paper_plot` draws the
same as bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from asif.evaluation.evaluations_table import Row  # noqa: E402
from asif.evaluation.metrics import CLASSIFICATION  # noqa: E402
from asif.evaluation.plots import Plot, Series, with_sidecar  # noqa: E402

PAPER_ACC1 = {"imagenet": 55.4, "cifar100": 63.3, "pets": 71.5, "imagenet-v2": 45.6}
"""Top-1 %, ASIF with a supervised ViT-B/16 and 1.6M CC12M pairs (the paper's Table 1)."""
PAPER_SETUP = "1.6M CC12M pairs, supervised ViT-B/16"
PAPER_SPLITS = {"imagenet": "val"}
"""Splits the paper benchmarks are read from, where not "test"."""


def _acc1(rows: Sequence[Row]) -> dict[str, Row]:
    return {r["benchmark"]: r for r in rows if r["task"] == CLASSIFICATION}


def paper_table(rows: Sequence[Row]) -> str:
    """A markdown table: each paper benchmark and each other classification benchmark in
    `rows`, with our acc1, the paper's, and what we measured on."""
    ours = _acc1(rows)
    header = [
        "| benchmark | images | anchors | encoders | ours top-1 % | paper top-1 % "
        f"({PAPER_SETUP}) |",
        "|---|---|---|---|---|---|",
    ]
    lines = []
    for name in [*PAPER_ACC1, *(n for n in ours if n not in PAPER_ACC1)]:
        paper = f"{PAPER_ACC1[name]:.1f}" if name in PAPER_ACC1 else "-"
        row = ours.get(name)
        if row is None:
            hint = f"not evaluated (--benchmark {name}=ROOT)"
            lines.append(f"| {name} | - | - | - | {hint} | {paper} |")
            continue
        encoders = f"{row['image_encoder']} + {row['text_encoder']}"
        lines.append(
            f"| {name} | {row['n_images']:,} | {row['n_anchors']:,} | {encoders} | "
            f"{100 * row['acc1']:.1f} | {paper} |"
        )
    return "\n".join(header + lines)


def paper_plot(rows: Sequence[Row], path: str | Path) -> Plot:
    """Bars of the paper's acc1 on its benchmarks and ours where evaluated (also on other
    benchmarks), as in `paper_table`."""
    ours = _acc1(rows)
    names = list(dict.fromkeys([*PAPER_ACC1, *ours]))
    series: Series = {
        "ours": {
            "x": [float(i) for i, n in enumerate(names) if n in ours],
            "y": [100 * ours[n]["acc1"] for n in names if n in ours],
        },
        "paper": {
            "x": [float(i) for i, n in enumerate(names) if n in PAPER_ACC1],
            "y": [PAPER_ACC1[n] for n in names if n in PAPER_ACC1],
        },
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2.5, 4.2), dpi=100)
    try:
        width = 0.38
        for offset, key, label, color in (
            (-width / 2, "ours", "ours", "tab:blue"),
            (width / 2, "paper", f"paper ({PAPER_SETUP})", "tab:gray"),
        ):
            x = np.asarray(series[key]["x"], dtype=np.float64) + offset
            bars = ax.bar(x, series[key]["y"], width, label=label, color=color)
            ax.bar_label(bars, fmt="%.1f", fontsize=8)
        ax.set_xticks(range(len(names)), names)
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.set(title="Zero-shot top-1 accuracy", ylabel="top-1 %", ylim=(0, 100))
        ax.legend(fontsize="small", loc="upper right")
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return with_sidecar(Plot(path, "Zero-shot top-1 accuracy", "benchmark", "top-1 %", series))
