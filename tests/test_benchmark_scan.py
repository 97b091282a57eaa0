"""benchmarks/relative.py --scan runs end to end on memory-mapped anchors (a small N)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np

from asif.scan.matrix import AnchorMatrix

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "relative.py"


def test_memory_mapped_scan_rows_agree_with_the_float32_search():
    args = ["--scan", "--mmap", "--sizes", "3000", "--dims", "32", "--queries", "8"]
    done = subprocess.run(
        [sys.executable, SCRIPT, *args, "--repeat", "1", "--device", "cpu"],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("     3000")]
    methods = [row[3] for row in rows]
    assert methods == ["float16-mmap", "int8-mmap", "float16-mmap@cpu", "int8-mmap@cpu"]
    assert all(row[-1] == "100.0%" for row in rows)  # same top-k sets as the float32 search


def test_mapped_anchors_are_the_in_memory_rows(tmp_path):
    spec = importlib.util.spec_from_file_location("relative_benchmark", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for precision in ("float16", "int8"):
        mapped = bench.mapped_anchors(250_001, 8, precision, tmp_path / precision)  # 3 blocks
        held = AnchorMatrix.from_float(bench.unit_rows(250_001, 8, 1), precision)
        assert not mapped.data.flags.owndata  # on disk, not in memory
        np.testing.assert_array_equal(mapped.to_float32(), held.to_float32())
