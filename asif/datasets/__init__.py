"""Labelled image sets read from what is installed: images, integer labels, class names.

They are data only; what is measured on them (prompt templates, image limits, cache keys) is
`asif.evaluation.benchmarks`, and the demo draws its anchors and test images from them.
"""

from asif.datasets.base import LabelledImages
from asif.datasets.captioned import (
    CaptionedImages,
    load_captioned,
    read_caption_folder,
    read_coco_captions,
    read_flickr_captions,
    read_karpathy,
)
from asif.datasets.digits import digits
from asif.datasets.fashion_mnist import FASHION_MNIST_ROOT, fashion_mnist
from asif.datasets.fashion_mnist import installed as fashion_mnist_installed

__all__ = [
    "FASHION_MNIST_ROOT",
    "CaptionedImages",
    "LabelledImages",
    "digits",
    "fashion_mnist",
    "fashion_mnist_installed",
    "load_captioned",
    "read_caption_folder",
    "read_coco_captions",
    "read_flickr_captions",
    "read_karpathy",
]
