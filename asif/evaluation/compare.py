"""Compare two evaluations of the same benchmark (e.g. two anchor table versions): overall
accuracy change, per-class accuracy changes, and which classes improved or regressed."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from asif.evaluation.evaluations_table import EvaluationsTable, Row
from asif.store.sql import quote


@dataclass(frozen=True)
class ClassChange:
    """One class's top-1 accuracy before and after."""

    name: str
    before: float
    after: float
    count: int

    @property
    def delta(self) -> float:
        return self.after - self.before


@dataclass(frozen=True)
class Comparison:
    """Two rows of one benchmark compared; `tolerance` separates changes from noise."""

    benchmark: str
    before_version: int
    after_version: int
    acc1_before: float
    acc1_after: float
    classes: list[ClassChange]
    tolerance: float = 0.0

    @property
    def delta(self) -> float:
        return self.acc1_after - self.acc1_before

    @property
    def improved(self) -> list[str]:
        return [c.name for c in self.classes if c.delta > self.tolerance]

    @property
    def regressed(self) -> list[str]:
        return [c.name for c in self.classes if c.delta < -self.tolerance]

    def to_dict(self) -> dict:
        """Plain data (for JSON or a flow's return value)."""
        out = asdict(self)
        out.update(delta=self.delta, improved=self.improved, regressed=self.regressed)
        for c, d in zip(out["classes"], self.classes, strict=True):
            c["delta"] = d.delta
        return out

    def markdown(self) -> str:
        """A short report: the overall change and a per-class table, biggest changes first."""
        lines = [
            f"### {self.benchmark}: version {self.before_version} -> {self.after_version}",
            "",
            f"top-1 accuracy {self.acc1_before:.2%} -> {self.acc1_after:.2%} ({self.delta:+.2%})",
            "",
            f"improved: {', '.join(self.improved) or 'none'}; "
            f"regressed: {', '.join(self.regressed) or 'none'}",
            "",
            "| class | images | before | after | change |",
            "|---|---|---|---|---|",
        ]
        for c in sorted(self.classes, key=lambda c: (-abs(c.delta), c.name)):
            lines.append(
                f"| {c.name} | {c.count} | {c.before:.2%} | {c.after:.2%} | {c.delta:+.2%} |"
            )
        return "\n".join(lines)


def compare_rows(before: Row, after: Row, tolerance: float = 0.0) -> Comparison:
    """Compare two evaluations rows of the same benchmark images and classes."""
    if before["benchmark_key"] != after["benchmark_key"]:
        raise ValueError(
            f"rows are of different benchmarks: {before['benchmark_key']!r} vs "
            f"{after['benchmark_key']!r}"
        )
    classes = [
        ClassChange(name, b, a, n)
        for name, b, a, n in zip(
            after["class_names"],
            before["class_accuracy"],
            after["class_accuracy"],
            after["class_count"],
            strict=True,
        )
        if not (math.isnan(b) or math.isnan(a))
    ]
    return Comparison(
        after["benchmark"],
        before["table_version"],
        after["table_version"],
        before["acc1"],
        after["acc1"],
        classes,
        tolerance,
    )


def previous_row(evaluations: EvaluationsTable, row: Row) -> Row | None:
    """The newest stored row of the same table, benchmark and settings at the closest earlier
    table version, if any."""
    where = " AND ".join(
        [
            f"table_uri = {quote(row['table_uri'])}",
            f"table_name = {quote(row['table_name'])}",
            f"benchmark_key = {quote(row['benchmark_key'])}",
            f"study = {quote(row['study'])}",
            f"strategy = {quote(row['strategy'])}",
            f"k = {int(row['k'])}",
            f"p = {float(row['p'])}",
            f"table_version < {int(row['table_version'])}",
        ]
    )
    rows = evaluations.read(where).to_pylist()
    rows = [r for r in rows if r["n_anchors"] == r["table_rows"]]
    if not rows:
        return None
    return max(rows, key=lambda r: (r["table_version"], r["evaluated_at"]))


def compare_with_previous(
    evaluations: EvaluationsTable, rows: list[Row], tolerance: float = 0.0
) -> list[Comparison]:
    """For each row, the comparison with the previous evaluated version (where there is one)."""
    out = []
    for row in rows:
        before = previous_row(evaluations, row)
        if before is not None:
            out.append(compare_rows(before, row, tolerance))
    return out
