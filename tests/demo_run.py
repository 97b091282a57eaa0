"""One small run of the demo per test session (real shipped encoders, Fashion-MNIST), shared by
tests/test_demo.py and tests/test_cli.py: its saved model is what the CLI tests query."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

from asif.demo import DemoResult, run_demo

ANCHORS_PER_CLASS = 40
TEST_PER_CLASS = 20
IMAGE_ENCODER = "efficientnet-lite0"  # faster than the demo's lite2


@cache
def demo_result() -> DemoResult:
    """The demo with its default settings, into a folder removed at exit."""
    out = Path(tempfile.mkdtemp(prefix="asif-demo-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    return run_demo(
        out / "model", out / "pairs", anchors_per_class=ANCHORS_PER_CLASS,
        test_per_class=TEST_PER_CLASS, image_encoder=IMAGE_ENCODER, progress=False,
    )  # fmt: skip
