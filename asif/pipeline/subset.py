"""Which rows of a url list a build takes, chosen reproducibly, and the record of that choice.

Rows are chosen by their 0-based index, never by chunk or order of arrival, so the same
options pick the same rows of the same file however it is read: a range and `limit` are
slices; `fraction` keeps row i when a seeded 64-bit hash of i falls below the fraction;
`sample` keeps the N rows of the range with the smallest such hashes. The sample is tracked
while the rows stream (the N smallest hashes so far: O(N) memory), so it is final only once
every row was offered: `Selection.candidates` may yield extra rows, `Selection.keep` says
which of them are in.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from asif.pipeline.url_list import SKIP_REASONS, USABLE, UrlListOptions, open_url_list

EXAMPLES = 5
"""Locations kept per skip reason, for messages."""
_M64 = (1 << 64) - 1


@dataclass(frozen=True)
class SubsetRecord:
    """The rows a build took from which file: enough to take the same rows again."""

    file_name: str
    sha256: str
    size_bytes: int
    rows_read: int
    rows_selected: int
    how: str
    """"all", or the options that chose the rows: "limit=1000", "start=10 stop=20 sample=5"."""
    seed: int | None
    """The seed of a `sample` or `fraction`; None for the others."""

    def as_metadata(self) -> dict[str, str]:
        """The record as string metadata (`url_list.<field>` keys), e.g. for a table version."""
        return {
            "url_list.file": self.file_name,
            "url_list.sha256": self.sha256,
            "url_list.size_bytes": str(self.size_bytes),
            "url_list.rows_read": str(self.rows_read),
            "url_list.rows_selected": str(self.rows_selected),
            "url_list.subset": self.how,
            "url_list.seed": "" if self.seed is None else str(self.seed),
        }


@dataclass(frozen=True)
class Skipped:
    """Unusable selected rows: counts by reason and the first few locations of each."""

    counts: dict[str, int]
    examples: dict[str, list[str]]

    def describe(self) -> str:
        """One line per reason: "3 blank line (line 4, line 9, line 12)"."""
        return "; ".join(
            f"{n} {reason} ({', '.join(self.examples[reason])}{', ...' if n > EXAMPLES else ''})"
            for reason, n in self.counts.items()
        )


@dataclass(frozen=True)
class Candidates:
    """Usable pairs of a chunk that may be selected (all are, unless sampling), with their rows."""

    rows: np.ndarray
    pairs: pa.Table


@dataclass(frozen=True)
class SubsetPairs:
    """A url list's selected usable pairs in file order, the unusable rows, and the record."""

    pairs: pa.Table
    skipped: Skipped
    record: SubsetRecord


def describe_subset(options: UrlListOptions) -> str:
    """The options that choose rows, as text ("all" when every row is taken)."""
    parts = [f"start={options.start}"] if options.start else []
    parts += [f"stop={options.stop}"] if options.stop is not None else []
    for name in ("limit", "sample", "fraction"):
        if getattr(options, name) is not None:
            parts.append(f"{name}={getattr(options, name)}")
    return " ".join(parts) or "all"


def file_sha256(path: str | Path) -> str:
    """The hex sha256 digest of a file's bytes (as stored: a `.gz` list's compressed bytes)."""
    with Path(path).open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def row_keys(rows: np.ndarray, seed: int) -> np.ndarray:
    """A seeded 64-bit hash (splitmix64) of each row index: distinct rows, distinct keys."""
    return _mix64(rows.astype(np.uint64) ^ np.uint64(_mix64_int(seed & _M64)))


def _mix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _mix64_int(x: int) -> int:
    return int(_mix64(np.array([x], dtype=np.uint64))[0])


class Selection:
    """The rows of a url list that its options choose, streamed in chunks.

    Iterate `candidates()` once; then `keep(rows)` is the final choice among the candidate
    rows (all True unless sampling), and `skipped` and `record()` describe the selection.
    """

    def __init__(
        self,
        url_list: str | Path,
        options: UrlListOptions = UrlListOptions(),
    ) -> None:
        self.reader = open_url_list(url_list, options)
        self.options = options
        self.exact = options.sample is None
        """Whether every candidate is selected (only a sample is decided at the end)."""
        stop = options.stop
        if options.limit is not None:
            end = options.start + options.limit
            stop = end if stop is None else min(stop, end)
        self._stop = stop
        self._selected = 0
        self._best = np.empty(0, dtype=np.uint64)  # a sample's smallest keys so far
        self._bad_rows: list[np.ndarray] = []
        self._bad_codes: list[np.ndarray] = []
        self._counts: Counter[int] = Counter()
        self._examples: dict[int, list[int]] = {}

    def candidates(self) -> Iterator[Candidates]:
        """The usable pairs of the rows that may be selected, in file order, chunk by chunk."""
        for chunk in self.reader.chunks(self.options.start, self._stop):
            rows = np.arange(chunk.first, chunk.first + chunk.num_rows, dtype=np.int64)
            take = self._take(rows)
            usable = chunk.reasons == USABLE
            bad = take & ~usable
            if bad.any():
                self._bad_rows.append(rows[bad])
                self._bad_codes.append(chunk.reasons[bad])
                if self.exact:
                    self._count_bad()
            good = take & usable
            if good.any():
                yield Candidates(rows[good], chunk.pairs.filter(pa.array(good)))

    def _take(self, rows: np.ndarray) -> np.ndarray:
        if self.options.fraction is not None:
            bound = np.uint64(min(int(self.options.fraction * 2.0**53), 1 << 53))
            take = (row_keys(rows, self.options.seed) >> np.uint64(11)) < bound
            self._selected += int(take.sum())
            return take
        if self.options.sample is None:
            self._selected += len(rows)
            return np.ones(len(rows), dtype=bool)
        n = self.options.sample
        keys = row_keys(rows, self.options.seed)
        take = keys < self._best.max() if len(self._best) >= n else np.ones(len(rows), bool)
        best = np.concatenate([self._best, keys[take]])
        self._best = np.partition(best, n - 1)[:n] if len(best) > n else best
        return take

    def keep(self, rows: np.ndarray) -> np.ndarray:
        """Which candidate rows are selected (call once every candidate was read)."""
        if self.exact or len(self._best) < (self.options.sample or 0):
            return np.ones(len(rows), dtype=bool)
        return row_keys(rows, self.options.seed) <= self._best.max()

    @property
    def rows_selected(self) -> int:
        """Selected rows, usable or not."""
        return self._selected if self.exact else len(self._best)

    @property
    def skipped(self) -> Skipped:
        """The unusable selected rows by reason (final once every candidate was read)."""
        self._count_bad()
        counts = {SKIP_REASONS[code]: n for code, n in self._counts.most_common()}
        examples = {
            SKIP_REASONS[code]: [self.reader.where(r) for r in rows]
            for code, rows in self._examples.items()
        }
        return Skipped(counts, examples)

    def _count_bad(self) -> None:
        """Move the unusable rows seen so far into the counts (a sample's: the selected ones)."""
        if not self._bad_rows:
            return
        rows, codes = np.concatenate(self._bad_rows), np.concatenate(self._bad_codes)
        self._bad_rows, self._bad_codes = [], []
        kept = self.keep(rows)
        rows, codes = rows[kept], codes[kept]
        for code in np.unique(codes).tolist():
            self._counts[code] += int((codes == code).sum())
            examples = self._examples.setdefault(code, [])
            examples += rows[codes == code][: EXAMPLES - len(examples)].tolist()

    def record(self) -> SubsetRecord:
        """The `SubsetRecord` of this selection (hashes the file once)."""
        path = self.reader.path
        sampled = self.options.sample is not None or self.options.fraction is not None
        return SubsetRecord(
            file_name=path.name,
            sha256=file_sha256(path),
            size_bytes=path.stat().st_size,
            rows_read=self.reader.rows_read,
            rows_selected=self.rows_selected,
            how=describe_subset(self.options),
            seed=self.options.seed if sampled else None,
        )


def read_subset(
    url_list: str | Path,
    options: UrlListOptions = UrlListOptions(),
) -> SubsetPairs:
    """The selected usable pairs of a url list, in memory (planning streams instead)."""
    selection = Selection(url_list, options)
    parts = list(selection.candidates())
    rows = np.concatenate([p.rows for p in parts]) if parts else np.empty(0, np.int64)
    empty = pa.table({"url": pa.array([], pa.string()), "caption": pa.array([], pa.string())})
    pairs = pa.concat_tables([empty, *(p.pairs for p in parts)])
    return SubsetPairs(
        pairs.filter(pa.array(selection.keep(rows))), selection.skipped, selection.record()
    )
