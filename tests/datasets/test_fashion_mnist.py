import pytest

from asif.datasets import FASHION_MNIST_ROOT, fashion_mnist, fashion_mnist_installed


def test_reads_the_installed_package():
    assert fashion_mnist_installed()
    test = fashion_mnist("test")
    assert len(test) == 10_000 and test.images.shape[1:] == (28, 28)
    assert test.class_names[9] == "ankle boot" and test.name == "fashion-mnist-test"


def test_missing_or_unknown(tmp_path):
    assert not fashion_mnist_installed(tmp_path)
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist("train", tmp_path)
    with pytest.raises(ValueError, match="split must be one of"):
        fashion_mnist("val", FASHION_MNIST_ROOT)
