"""The demo: anchors from real labelled images with captions, then zero-shot on held-out images.

Fashion-MNIST (Debian's `dataset-fashion-mnist`) when installed, else scikit-learn's digits.
Anchor captions are varied sentences about each image's class; the zero-shot prompts are the
library's default templates, none of which is a caption template, so the model never sees its
test prompts among the anchors. The model has the default settings (`asif.model.settings`),
the ones `asif serve` and the evaluate flow use, unless k or p are given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from asif.datasets import LabelledImages, digits, fashion_mnist, fashion_mnist_installed
from asif.encoders import load_image_encoder, load_text_encoder
from asif.model import AsifModel, Explanation
from asif.model.zero_shot import DEFAULT_TEMPLATES, Prediction

CAPTION_TEMPLATES = (
    "a black and white photo of a {}.",
    "a grayscale picture showing a {}.",
    "a small low resolution image of a {}.",
    "this is a {}.",
    "a {} on a dark background.",
    "an item of the kind {}.",
    "a picture of one {}.",
    "a centered photo of a single {}.",
)
PAIRS_MARKER = ".asif-demo-pairs"
MODEL_DIR = "asif-data/demo-model"
PAIRS_DIR = "asif-data/demo-pairs"  # also the build-anchors/demo deployment's input
ANCHORS_PER_CLASS = 100
TEST_PER_CLASS = 50
IMAGE_ENCODER = "efficientnet-lite2"
TEXT_ENCODER = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class DemoResult:
    """What the demo measured."""

    dataset: str
    n_anchors: int
    prediction: Prediction
    targets: np.ndarray
    explanation: Explanation
    model_path: Path
    pairs_dir: Path | None

    @property
    def accuracy(self) -> float:
        return self.prediction.accuracy(self.targets)

    @property
    def chance(self) -> float:
        return 1.0 / len(self.prediction.class_names)

    def report(self) -> str:
        p, t = self.prediction, self.targets
        lines = [
            f"dataset: {self.dataset}; anchors: {self.n_anchors}; held-out images: {len(t)}",
            f"zero-shot top-1 accuracy: {self.accuracy:.1%}  (top-2: {p.accuracy(t, 2):.1%}; "
            f"chance: {self.chance:.1%})",
            "",
            f"{'class':<14}{'images':>7}{'accuracy':>10}",
        ]
        for c, name in enumerate(p.class_names):
            rows = t == c
            lines.append(f"{name:<14}{rows.sum():>7}{np.mean(p.label_ids[rows] == c):>10.1%}")
        lines += ["", "one explanation (first held-out image):", str(self.explanation)]
        lines += ["", f"model saved to {self.model_path}"]
        if self.pairs_dir is not None:
            lines += [
                f"anchor pairs written to {self.pairs_dir} (PNG + .txt caption); build a LanceDB "
                "anchor table from them with the pipeline (see README):",
                f"  prefect deployment run build-anchors/demo -p url_list={self.pairs_dir}",
            ]
        return "\n".join(lines)


def demo_data() -> tuple[LabelledImages, LabelledImages]:
    """(anchor pool, held-out test set) from the best labelled set installed."""
    if fashion_mnist_installed():
        return fashion_mnist("train"), fashion_mnist("test")
    return digits("train"), digits("test")


def anchor_captions(data: LabelledImages, seed: int = 0) -> list[str]:
    """A caption per image: a random caption template filled with its class name."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(len(CAPTION_TEMPLATES), size=len(data))
    return [
        CAPTION_TEMPLATES[t].format(data.class_names[c])
        for t, c in zip(picks, data.labels, strict=True)
    ]


def demo_anchors(
    pool: LabelledImages, per_class: int = ANCHORS_PER_CLASS, seed: int = 0
) -> tuple[LabelledImages, list[str]]:
    """The demo's anchor pairs: `per_class` random images of each class and their captions."""
    anchors = pool.stratified(per_class, seed)
    return anchors, anchor_captions(anchors, seed)


def write_pairs_folder(data: LabelledImages, captions: Sequence[str], folder: str | Path) -> Path:
    """The pairs as `folder/<i>.png` images with same-stem `.txt` captions: the folder input
    of the build-anchors flow. Replaces the pairs of an earlier demo; refuses any other
    non-empty folder rather than mix its files in."""
    folder = Path(folder).resolve()
    marker = folder / PAIRS_MARKER
    if folder.is_dir() and any(folder.iterdir()) and not marker.is_file():
        raise FileExistsError(f"{folder} is not empty and not an earlier demo's pairs folder")
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text("anchor pairs written by `asif demo`; rewritten by each demo\n")
    for old in [*folder.glob("*.png"), *folder.glob("*.txt")]:
        old.unlink()
    for i, (image, caption) in enumerate(zip(data.images, captions, strict=True)):
        Image.fromarray(np.asarray(image)).save(folder / f"{i:05d}.png")
        (folder / f"{i:05d}.txt").write_text(caption, encoding="utf-8")
    return folder


def run_demo(
    output: str | Path = MODEL_DIR,
    pairs_dir: str | Path | None = PAIRS_DIR,
    anchors_per_class: int = ANCHORS_PER_CLASS,
    test_per_class: int = TEST_PER_CLASS,
    image_encoder: str = IMAGE_ENCODER,
    text_encoder: str = TEXT_ENCODER,
    k: int | None = None,
    p: float | None = None,
    seed: int = 0,
    progress: bool = True,
) -> DemoResult:
    """Build anchors, save the model, classify held-out images and explain one answer.

    `k`, `p`: None keeps the model default. With `pairs_dir`, the anchor pairs are also
    written there as captioned images.
    """
    pool, test = demo_data()
    anchors, captions = demo_anchors(pool, anchors_per_class, seed)
    test = test.stratified(test_per_class, seed + 1)
    pairs = None if pairs_dir is None else write_pairs_folder(anchors, captions, pairs_dir)
    model = AsifModel.from_pairs(
        list(anchors.images),
        captions,
        load_image_encoder(image_encoder),
        load_text_encoder(text_encoder),
        urls=[f"{anchors.name}#{i}" for i in range(len(anchors))],
        progress=progress,
    )
    changes = {name: v for name, v in (("k", k), ("p", p)) if v is not None}
    if changes:
        model = model.with_settings(**changes)
    path = model.save(output)
    classifier = model.zero_shot_classifier(test.class_names, DEFAULT_TEMPLATES)
    embeddings = model.embed_images(list(test.images), progress=progress)
    prediction = model.classify_embeddings(embeddings, classifier)
    explanation = model.explain_embedding(embeddings[0], classifier)
    return DemoResult(anchors.name, len(model), prediction, test.labels, explanation, path, pairs)
