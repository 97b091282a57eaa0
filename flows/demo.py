"""The main job on an embedded default: the demo's anchor pairs through the whole pipeline.

`asif demo --pipeline`: the demo's pairs (`asif.demo`: real Fashion-MNIST images with
captions) are served from a 127.0.0.1 HTTP server and listed as a headerless
url TAB caption file, as CC12M ships; the build-anchors flow downloads them with img2dataset,
embeds them with Ray, validates them with Great Expectations and commits them to a LanceDB
table; then the evaluate flow evaluates the new version. Both flows run in this process, on
PREFECT_API_URL's server or a temporary local one. Nothing leaves the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asif.datasets import fashion_mnist_installed
from asif.demo import (
    ANCHORS_PER_CLASS,
    IMAGE_ENCODER,
    PAIRS_DIR,
    TEST_PER_CLASS,
    TEXT_ENCODER,
    demo_anchors,
    demo_data,
    write_pairs_folder,
)
from asif.evaluation.templates import DEFAULT_TEMPLATES
from asif.model import Explanation
from asif.pipeline.build import DEFAULT_TABLE_URI
from asif.pipeline.embed import EmbedOptions
from asif.pipeline.loopback import serve_folder
from asif.pipeline.progress import TerminalProgress
from asif.pipeline.summary import BuildSummary, summary_text
from asif.pipeline.url_list import UrlListOptions
from asif.store.location import TableLocation
from flows.build_anchors import run_here
from flows.console import prefect_console_quiet
from flows.evaluate import evaluate

DEMO_PORT = 8631
"""The pairs' server port: the urls (and so the anchor ids) are the same on every run, so a
rerun resumes and adds nothing; another free port only when this one is taken."""


@dataclass(frozen=True)
class PipelineDemoResult:
    """What the pipeline demo built and measured."""

    url_list: Path
    summary: BuildSummary
    evaluation: dict[str, Any]
    """The evaluate flow's row (`flows.evaluate.SUMMARY_FIELDS`)."""
    explanation: Explanation
    table_uri: str

    def report(self) -> str:
        r = self.evaluation
        return "\n".join(
            [
                summary_text(self.summary).rstrip(),
                "",
                f"evaluation of version {r['table_version']} ({r['n_anchors']} anchors, "
                f"k={r['k']}, p={r['p']}) on {r['benchmark']}, {r['n_images']} held-out "
                f"images: top-1 {r['acc1']:.1%}, top-5 {r['acc5']:.1%}",
                "",
                "one explanation (first held-out image):",
                str(self.explanation),
                "",
                f"url list (CC12M's layout: url TAB caption, no header): {self.url_list}",
                "serve the table (it follows every new version; its page: http://127.0.0.1:8000/):",
                f"  .venv/bin/asif serve --table {self.table_uri}",
            ]
        )


def write_url_list(pairs_dir: Path, base_url: str, path: Path) -> Path:
    """`path` listing the pairs folder's images (by url under `base_url`) and captions."""
    lines = [
        f"{base_url}/{image.name}\t{image.with_suffix('.txt').read_text(encoding='utf-8')}\n"
        for image in sorted(pairs_dir.glob("*.png"))
    ]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def run_pipeline_demo(
    table_uri: str = DEFAULT_TABLE_URI,
    pairs_dir: str | Path = PAIRS_DIR,
    image_encoder: str = IMAGE_ENCODER,
    text_encoder: str = TEXT_ENCODER,
    anchors_per_class: int = ANCHORS_PER_CLASS,
    test_per_class: int = TEST_PER_CLASS,
) -> PipelineDemoResult:
    """Build the demo's anchor table with the build-anchors flow, evaluate the new version with
    the evaluate flow, explain one answer."""
    pool, test = demo_data()
    anchors, captions = demo_anchors(pool, anchors_per_class)
    folder = write_pairs_folder(anchors, captions, pairs_dir)
    location = TableLocation.from_env(table_uri)
    url_list = folder.parent / "demo-urls.tsv"
    with serve_folder(folder, DEMO_PORT) as base_url:
        write_url_list(folder, base_url, url_list)
        summary = run_here(
            (TerminalProgress(),),
            url_list=str(url_list),
            table_uri=table_uri,
            table_name=location.name,
            source=UrlListOptions(header=False, url_col=0, caption_col=1),
            embed=EmbedOptions(image_encoder=image_encoder, text_encoder=text_encoder),
        )
    name = "fashion-mnist" if fashion_mnist_installed() else "digits"  # as `demo_data`
    with prefect_console_quiet():
        evaluated = evaluate(
            table_uri=table_uri,
            table_name=location.name,
            version=summary.version,
            benchmarks=[name],
            limit=test_per_class * len(test.class_names),
        )
    from asif.encoders import load_image_encoder, load_text_encoder
    from asif.model.from_table import model_from_table

    table = location.open(summary.version)
    model = model_from_table(
        table,
        image_encoder=load_image_encoder(table.image_encoder),
        text_encoder=load_text_encoder(table.text_encoder),
    )
    # the benchmark's templates
    explanation = model.explain(test.images[0], test.class_names, DEFAULT_TEMPLATES)
    return PipelineDemoResult(url_list, summary, evaluated["rows"][0], explanation, table_uri)
