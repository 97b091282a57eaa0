"""Labelled image sets for anchors, demos and zero-shot benchmarks."""

from asif.datasets.base import LabelledImages
from asif.datasets.digits import digits
from asif.datasets.fashion_mnist import FASHION_MNIST_ROOT, fashion_mnist

__all__ = ["LabelledImages", "digits", "fashion_mnist", "FASHION_MNIST_ROOT"]
