"""benchmarks/relative.py --scan runs end to end on memory-mapped anchors (a small N)."""

import subprocess
import sys
from pathlib import Path

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
