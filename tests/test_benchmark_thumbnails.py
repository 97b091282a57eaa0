"""benchmarks/thumbnails.py runs end to end (a small N) and prints both of its tables."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "thumbnails.py"


def test_thumbnail_and_lookup_tables():
    done = subprocess.run(
        [sys.executable, SCRIPT, "--sizes", "2000"],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    photos = [line.split(" | ") for line in lines if line.endswith(" |") and "x256 |" in line]
    assert len(photos) == 7 and all(int(p[2].replace(",", "")) < 16_000 for p in photos)
    [lookups] = [line for line in lines if line.startswith("| 2,000 |")]
    assert "x) |" in lookups
