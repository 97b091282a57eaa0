"""build_anchor_table joins a separate Ray head (via RAY_ADDRESS) and writes to S3 (moto)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc

from asif.store.table import AnchorTable
from tests.http_fixtures import ImageServer, generate_pairs, write_url_list
from tests.infra.services import moto_s3, ray_head

REPO = Path(__file__).resolve().parents[2]
BUILD = """
import json, sys
import ray
from asif.pipeline.build import build_anchor_table
from asif.pipeline.download import DownloadOptions
from asif.pipeline.embed import EmbedOptions
from asif.store.location import TableLocation
args = json.loads(sys.argv[1])
summary = build_anchor_table(
    location=TableLocation.from_env(args.pop("table_uri")),
    download=DownloadOptions(**args.pop("download")),
    embed=EmbedOptions(**args.pop("embed")),
    **args,
)
print("RESULT", json.dumps({**summary.as_dict(), "gcs": ray.get_runtime_context().gcs_address}))
"""


def test_build_on_a_ray_head_into_s3(tmp_path):
    items = generate_pairs(8, n_missing=1)
    with ImageServer(items) as images, moto_s3() as bucket, ray_head(tmp_path, num_cpus=2) as head:
        url_list = write_url_list(images, [p for p, _ in items], tmp_path / "urls.tsv")
        args = {
            "url_list": str(url_list),
            "table_uri": bucket.uri,
            "work_dir": str(tmp_path / "work"),
            "quarantine_dir": str(tmp_path / "quarantine"),
            "download": {"image_size": 64, "threads": 4},
            "embed": {"image_encoder": "efficientnet-lite0", "batch_size": 8},
            "tag": "on-ray",
        }
        done = subprocess.run(
            [sys.executable, "-c", BUILD, json.dumps(args)],
            cwd=REPO,
            env={**head.env, **bucket.env, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
        line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
        summary = json.loads(line.removeprefix("RESULT "))
        table = AnchorTable.open(bucket.uri, storage_options=bucket.storage_options)
        ids = table.read(["id"])["id"]
        tags, version = table.tags(), table.version
    assert summary["gcs"] == head.address
    assert summary["inserted"] == summary["rows"] == 8 and summary["tag"] == "on-ray"
    assert len(ids) == pc.count_distinct(ids).as_py() == 8
    assert tags == {"on-ray": version}
