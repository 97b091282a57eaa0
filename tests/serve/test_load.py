import argparse
import importlib.util
import os
import sys
from pathlib import Path

import pytest

from tests.serve.conftest import png, shape_image

LOAD_TEST = Path(__file__).parents[2] / "benchmarks" / "load_test.py"


def load_module():
    spec = importlib.util.spec_from_file_location("load_test", LOAD_TEST)
    module = importlib.util.module_from_spec(spec)
    sys.modules["load_test"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_small_load_test_has_no_failures(shape_table, serve):
    load_test = load_module()
    server = serve(shape_table, k=10)
    image = png(shape_image("green", "square", 5))
    result = load_test.run_load(
        server.url, ["red circle", "green square"], image=image, requests=40, concurrency=4,
        max_seconds=60,
    )  # fmt: skip
    print(result.report())
    assert result.requests == 40 and not result.failures
    assert result.rps > 0 and result.percentile_ms(50) <= result.percentile_ms(99)


def test_load_test_refuses_other_hosts():
    load_test = load_module()
    with pytest.raises(SystemExit, match="loopback"):
        load_test.check_loopback("http://example.com:8000")
    load_test.check_loopback("http://127.0.0.1:8000")


def test_swaps_under_load_serve_every_version_without_failing(shape_table, serve):
    load_test = load_module()
    server = serve(shape_table, k=10, watch_interval=0.1)
    image = png(shape_image("red", "circle", 3))
    result = load_test.swaps_under_load(
        server.url, os.getpid(), shape_table.uri, swaps=3, rows=5, anchors=27, image=image
    )
    assert result.swaps == 3 and result.load.requests > 0 and not result.load.failures
    assert result.rss_after_first > 0 and abs(result.growth) < 1


@pytest.mark.slow
def test_the_comparison_runs_end_to_end(capsys):
    """The benchmark as documented, at a tiny size: two servers in subprocesses."""
    load_test = load_module()
    args = argparse.Namespace(
        image=None, anchors=300, requests=16, clients=[2, 4], max_seconds=120, swaps=2,
        swap_rows=10,
    )  # fmt: skip
    assert load_test.compare(args)
    out = capsys.readouterr().out
    assert "| 4 | micro-batched |" in out and "2 version swaps" in out
