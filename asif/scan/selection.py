"""Per query, the entries of streamed similarity rows that may still be among its k best.

Both CPU scans multiply one chunk of anchors at a time and must pick, per query, the few
entries that matter out of N: the exact top-k of float32 similarities, or every anchor
whose bfloat16 product may reach the k-th best once the product's error is allowed for.
`Selection` keeps them per query in a buffer, in index order, above a floor that only
rises: one compiled pass (numba) over each chunk tests blocks of BLOCK entries at once,
appends what passes, and when a buffer fills (or holds PRUNE_AT k after a chunk) raises its
floor from its k-th largest entry and drops what falls below. Entries are read in place,
bfloat16 products as their bits, and nothing of a chunk's size is written.

Ties go to the lower index: in `exact` mode, once k are held, an entry must beat the k-th
best (an equal one comes later, so it loses), and of entries equal to the k-th those
appended first, lower indices, stay.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numba import types
from numba.extending import overload

from asif.scan.compiled import bfloat16_to_float32, jit, vectorize
from asif.scan.descending import sort_descending
from asif.scan.parallel import in_parallel
from asif.scan.scratch import scratch

# entries tested as one first: few blocks hold any once the floor is up. 8: measured with
# numba 0.68, whose loops of 16 or 32 compile to scalar code (6 times slower)
BLOCK = 8
EXACT_ROOM = 4  # an exact buffer's capacity, in multiples of k: a compaction per 3 k appended
PRUNE_AT = 2  # entries a query holds after a chunk, in multiples of k, that raise its floor


def _read(row: np.ndarray, at: int) -> float:
    """Entry `at` of a chunk's row as float32 (compiled per dtype below)."""
    raise NotImplementedError


@overload(_read, inline="always")
def _read_of(row, at):  # numba: no annotations
    if row.dtype == types.float32:
        return lambda row, at: row[at]
    if row.dtype == types.int16:  # bfloat16 bits: numba has no bfloat16 arrays
        return lambda row, at: bfloat16_to_float32(row[at])
    return None


def _value(row: np.ndarray, at: int, factors: np.ndarray | None) -> float:
    """Entry `at` of a chunk's row times its anchor's factor (the chunk's slice of
    `factors`), if any (compiled with and without factors below)."""
    raise NotImplementedError


@overload(_value, inline="always")
def _value_of(row, at, factors):  # numba: no annotations
    if factors is None or isinstance(factors, types.NoneType):
        return lambda row, at, factors: _read(row, at)
    return lambda row, at, factors: _read(row, at) * factors[at]


@vectorize(["float64(float64, float64)"])
def lowest_product(low, rounding):
    """The least product y whose upper end y + rounding |y| reaches `low`."""
    return low / (1 + rounding) if low > 0 else low / (1 - rounding)


@vectorize(["float64(float64, float64, float64)"])
def floor_below(kth, margin, rounding):
    """The least product whose upper end, y + rounding |y| + margin, reaches the lower end
    of a product `kth` (kth - rounding |kth| - margin) that k anchors are known to reach."""
    return lowest_product(kth - rounding * abs(kth) - margin, rounding)


@jit(inline="always")
def _maxima(row, size, factors):
    """The maximum of each whole block of `size` entries of a row (float32 or bfloat16
    bits). Inlined where `size` is a constant: the inner loop then runs in vector lanes."""
    out = np.empty(len(row) // size, np.float32)
    for block in range(len(out)):
        top = _value(row, block * size, factors)
        for at in range(1, size):
            value = _value(row, block * size + at, factors)
            top = value if value > top else top  # a select, not max(): vector lanes
        out[block] = top
    return out


@jit()
def _first_floor(row, factors, whole, k, exact, margin, rounding):
    """A floor from a row's first chunk alone: the k-th largest maximum of k or more
    disjoint blocks is reached by k distinct entries, so it is at most the k-th best (nearly
    as high, blocks being many); -inf with fewer than k blocks of BLOCK. Blocks of 8 BLOCK
    where there are k of them: a selection over 8 times fewer maxima. Exact rows keep
    entries equal to it: the floor goes just below it."""
    if whole // BLOCK < k:
        return -np.inf
    maxima = _maxima(row, BLOCK, factors)
    if len(maxima) // 8 >= k:
        maxima = _maxima(maxima, 8, None)
    kth = np.partition(maxima, len(maxima) - k)[len(maxima) - k]
    if exact:  # halfway to the next float32 down: > floor is >= kth for float32 values
        return (np.float64(kth) + np.nextafter(kth, np.float32(-np.inf))) / 2
    return floor_below(kth, margin, rounding)


@jit()
def _compact(values, indices, count, k, exact, margin, rounding, floor):
    """Raise the floor from the k-th largest of `values[:count]` and keep, in order, the
    entries that pass it; the new (count, floor).

    `exact`: the floor is the k-th value, and of the entries equal to it only the first
    (lowest-indexed) fill the k places. Else it is `floor_below` the k-th.
    """
    kth = np.partition(values[:count].copy(), count - k)[count - k]
    room = 0
    if exact:
        room = k
        for at in range(count):
            room -= values[at] > kth
        floor = kth
    else:
        floor = max(floor, floor_below(kth, margin, rounding))
    kept = 0
    for at in range(count):
        value = values[at]
        if value > floor or (value == floor and (not exact or room > 0)):
            if exact and value == floor:
                room -= 1
            values[kept] = value
            indices[kept] = indices[at]
            kept += 1
    return kept, floor


@jit(inline="always")
def _below(floor):
    """The largest float32 at most `floor` (a float64): testing against it misses nothing."""
    low = np.float32(floor)
    return np.float32(np.nextafter(low, np.float32(-np.inf))) if low > floor else low


@jit(inline="always")
def _take(
    row, factors, begin, end, start, values, indices, count, k, exact, margin, rounding, floor
):
    """Append the passing entries of `row[begin:end]` (at most BLOCK), compacting the
    buffer first if they might not fit; the new (count, floor), count -1 if the buffer stays
    over half full after compaction (too many near-ties).

    Every entry is written and the count only advances past those that pass: no branch
    to mispredict.
    """
    if count + BLOCK > len(values):
        count, floor = _compact(values, indices, count, k, exact, margin, rounding, floor)
        if count > len(values) // 2:
            return -1, floor
    for at in range(begin, end):
        value = _value(row, at, factors)
        values[count] = value
        indices[count] = start + at
        count += (value > floor) | ((value == floor) & (not exact))
    return count, floor


@jit()
def _blocks_reaching(row, factors, low, hit):
    """hit[b]: whether whole block b of `row` holds an entry >= `low` (a float32), with
    factors if any (the chunk's, indexed like its columns: loads in vector lanes). A loop of
    its own, of constant inner length: it runs in vector lanes."""
    for block in range(len(hit)):
        count = np.int32(0)
        for at in range(BLOCK):
            count += np.int32(_value(row, block * BLOCK + at, factors) >= low)
        hit[block] = count > 0


@jit()
def _keep(
    chunk,
    factors,
    start,
    values,
    indices,
    counts,
    floors,
    margins,
    k,
    exact,
    rounding,
    first,
    last,
):
    """Append each row's passing entries of `chunk` (anchors from `start`, their
    `factors` if any); False if a buffer stays over half full after its compaction (too
    many near-ties).

    Whole blocks of BLOCK entries are first tested against the floor rounded down to
    float32 (`_blocks_reaching`); entries are tested one by one in the blocks that pass.
    """
    width = chunk.shape[1]
    whole = width - width % BLOCK
    hit = np.empty(whole // BLOCK, np.bool_)
    for i in range(first, last):
        row, count, floor = chunk[i], counts[i], floors[i]
        vals, idx, margin = values[i], indices[i], margins[i]
        if floor == -np.inf and count == 0:
            floor = _first_floor(row, factors, whole, k, exact, margin, rounding)
        _blocks_reaching(row, factors, _below(floor), hit)
        for block in np.flatnonzero(hit):
            begin = block * BLOCK
            count, floor = _take(
                row,
                factors,
                begin,
                begin + BLOCK,
                start,
                vals,
                idx,
                count,
                k,
                exact,
                margin,
                rounding,
                floor,
            )
            if count < 0:
                return False
        count, floor = _take(
            row, factors, whole, width, start, vals, idx, count, k, exact, margin, rounding, floor
        )
        if count < 0:
            return False
        if count >= PRUNE_AT * k:  # raise the floor for the next chunk
            count, floor = _compact(vals, idx, count, k, exact, margin, rounding, floor)
        counts[i], floors[i] = count, floor
    return True


@jit()
def _finish(values, indices, counts, floors, margins, k, exact, rounding, first, last):
    """A last compaction of each row holding k or more; exact rows then sorted by value,
    descending (stably: equal values stay in index order)."""
    for i in range(first, last):
        if counts[i] >= k:
            counts[i], floors[i] = _compact(
                values[i], indices[i], counts[i], k, exact, margins[i], rounding, floors[i]
            )
        if exact:
            sort_descending(values[i, : counts[i]], indices[i, : counts[i]])


class Selection:
    """Per query, the entries of the chunks given to `keep` that may be among its k best.

    `exact`: the k best float32 similarities. Else bfloat16 products, kept while their upper
    end, y + `rounding` |y| + `margins`, may reach the k-th largest product's lower end
    (the same with the sign of the error reversed); `capacity` entries a query at most.
    With `factors`, each anchor's entries are first multiplied by its factor. Use within
    `with`: the buffers are scratch memory.
    """

    def __init__(
        self,
        n: int,
        k: int,
        exact: bool,
        capacity: int | None = None,
        margins: np.ndarray | None = None,
        rounding: float = 0.0,
        factors: np.ndarray | None = None,
    ) -> None:
        self.k, self.exact, self.rounding, self.factors = k, exact, rounding, factors
        self.capacity = max(capacity or EXACT_ROOM * k, 2 * k + 2 * BLOCK)
        self.margins = np.zeros(n) if margins is None else margins
        self._scratch = scratch(
            ((n, self.capacity), torch.float32), ((n, self.capacity), torch.int64)
        )
        self.counts = np.zeros(n, np.int64)
        self.floors = np.full(n, -np.inf)  # float64: a bound rounded to float32 could rise

    def __enter__(self) -> Selection:
        values, indices = self._scratch.__enter__()
        self.values, self.indices = values.numpy(), indices.numpy()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._scratch.__exit__(*exc)

    def keep(self, chunk: torch.Tensor, start: int) -> bool:
        """Take in a chunk's rows (float32, or bfloat16 products) for anchors from `start`;
        False if some query keeps more than half its capacity even after pruning."""
        rows = chunk.view(torch.int16) if chunk.dtype == torch.bfloat16 else chunk
        data = rows.numpy()
        # the chunk's own factors, indexed like its columns: loads in vector lanes
        factors = None if self.factors is None else self.factors[start : start + data.shape[1]]

        def loop(first: int, last: int) -> bool:
            return bool(
                _keep(
                    data, factors, start, self.values, self.indices, self.counts,
                    self.floors, self.margins, self.k, self.exact, self.rounding, first, last,
                )
            )  # fmt: skip

        return all(in_parallel(loop, len(data)))

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(values, indices) per query, copied out: exact, the k best by (value descending,
        index ascending); else the candidates in index order, padded with -inf."""

        def loop(first: int, last: int) -> None:
            _finish(
                self.values, self.indices, self.counts, self.floors, self.margins,
                self.k, self.exact, self.rounding, first, last,
            )  # fmt: skip

        in_parallel(loop, len(self.counts))
        width = int(self.counts.max()) if len(self.counts) else 0
        held = np.arange(width) < self.counts[:, None]
        values = np.where(held, self.values[:, :width], -np.inf).astype(np.float32)
        indices = np.where(held, self.indices[:, :width], 0)
        return torch.from_numpy(values), torch.from_numpy(indices)
