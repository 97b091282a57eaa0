"""Planning a download streams: a 2M-row list (half of it already in finished shards) is
planned under a stated memory ceiling, far below the 1.25 GiB the in-memory planner took."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
ROWS = 2_000_000
DONE = 1_000_000
"""Pairs already downloaded, in finished shards of 10,000 rows (img2dataset's layout)."""
REPEATS = 1000
"""Rows repeating an earlier row (the list's last rows)."""
CEILING_MIB = 256
"""Peak RSS growth allowed while planning. Measured on the 2-core dev box: about 120 MiB
(16 bytes per candidate and per finished pair, the sort's temporaries, one chunk)."""

PLAN = """
import json, resource, sys
from asif.pipeline.download import plan_pairs
from asif.pipeline.url_list import UrlListOptions
options = UrlListOptions(url_col=0, caption_col=1)
tiny, url_list, out = sys.argv[1:4]
plan_pairs(tiny, tiny + ".out", options)  # warm up: imports, Arrow's allocator, thread pools
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
plan = plan_pairs(url_list, out, options)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({
    "grown_mib": (peak - before) / 1024,
    "pending": plan.pending_pairs,
    "duplicates": plan.duplicates,
    "already": plan.already_downloaded,
    "skipped": plan.skipped.counts,
}))
"""


def _url(i: int) -> str:
    return f"https://img.example.com/photos/{i:09d}.jpg"


def _caption(i: int) -> str:
    return f'A <PERSON> with a "big" dog, photo {i} of the collection'


def test_planning_a_2m_row_list_stays_under_the_memory_ceiling(tmp_path):
    url_list = tmp_path / "cc12m.tsv"
    with url_list.open("w", encoding="utf-8") as f:
        step = 100_000
        for start in range(0, ROWS - REPEATS, step):
            stop = min(start + step, ROWS - REPEATS)
            f.write("".join(f"{_url(i)}\t{_caption(i)}\n" for i in range(start, stop)))
        f.write("".join(f"{_url(i)}\t{_caption(i)}\n" for i in range(REPEATS)))
        f.write("\nhttps://img.example.com/broken.jpg\n")
    out = tmp_path / "shards"
    out.mkdir()
    per_shard = 10_000
    for shard, start in enumerate(range(0, DONE, per_shard)):
        rows = range(start, start + per_shard)
        table = pa.table({"url": [_url(i) for i in rows], "caption": [_caption(i) for i in rows]})
        pq.write_table(table, out / f"{shard:05d}.parquet")
        (out / f"{shard:05d}_stats.json").write_text("{}")
    tiny = tmp_path / "tiny.tsv"
    tiny.write_text("https://x/1.jpg\tone\n")

    result = subprocess.run(
        [sys.executable, "-c", PLAN, str(tiny), str(url_list), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    got = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"planning {ROWS:,} rows grew the peak RSS by {got['grown_mib']:.0f} MiB")
    assert got["pending"] == ROWS - REPEATS - DONE
    assert (got["duplicates"], got["already"]) == (0, DONE + REPEATS)
    assert got["skipped"] == {"blank line": 1, "malformed line (wrong number of fields)": 1}
    assert got["grown_mib"] < CEILING_MIB
    pending = pq.ParquetFile(out / "_plan" / "pending.parquet")
    assert pending.metadata.num_rows == ROWS - REPEATS - DONE
    first = next(pending.iter_batches(batch_size=1)).to_pylist()[0]
    assert first == {"url": _url(DONE), "caption": _caption(DONE)}
