"""Run the Python examples of docs/anchor-table.md, in order, against a small real table."""

import re
from pathlib import Path

import numpy as np
import pytest

from asif.store.batch import build_anchor_batch
from asif.store.table import AnchorTable

DOC = Path(__file__).parent.parent / "docs" / "anchor-table.md"
DOC_URI = "asif-data/lancedb"


def code_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.fixture
def small_table(tmp_path) -> str:
    rng = np.random.default_rng(0)
    uri = str(tmp_path / "anchors")
    table = AnchorTable.create_or_open(
        uri, image_encoder="efficientnet-lite0", text_encoder="all-MiniLM-L6-v2",
        image_dim=16, text_dim=8,
    )  # fmt: skip

    def unit(n, d):
        x = rng.standard_normal((n, d)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    for shard, start in (("s0", 0), ("s1", 20)):
        table.upsert(
            build_anchor_batch(
                urls=[f"http://127.0.0.1/{i}.jpg" for i in range(start, start + 20)],
                captions=[f"caption {'x' * (i % 7)} {i}" for i in range(start, start + 20)],
                widths=[32 + i for i in range(20)],
                heights=[48] * 20,
                image_embeddings=unit(20, 16),
                text_embeddings=unit(20, 8),
                shard=shard,
            )
        )
    return uri


def test_doc_has_examples_for_every_reader():
    text = "\n".join(code_blocks(DOC))
    assert DOC_URI in text
    for reader in ("import duckdb", "import polars", "to_pandas()", "import lance"):
        assert reader in text


def test_doc_examples_run(small_table, capsys):
    namespace: dict = {"__name__": "docs_example"}
    for block in code_blocks(DOC):
        exec(compile(block.replace(DOC_URI, small_table), str(DOC), "exec"), namespace)
    out = capsys.readouterr().out
    assert "40 anchor pairs at version 3" in out
    assert "(40, 16)" in out and "[(40, 2)]" in out
    assert "2 inserted, 0 updated, now version 4" in out
    assert "{'candidate': 4} 5" in out
