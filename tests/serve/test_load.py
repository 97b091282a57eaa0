import importlib.util
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
