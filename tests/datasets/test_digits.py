import numpy as np
import pytest

from asif.datasets import digits


def test_fixed_halves_split_the_whole_set():
    everything, train, test = digits(), digits("train"), digits("test")
    assert len(everything) == 1797 and len(train) + len(test) == 1797
    assert everything.images.dtype == np.uint8 and everything.images.max() == 255
    assert (train.name, test.name) == ("digits-train", "digits-test")
    np.testing.assert_array_equal(digits("test").labels, test.labels)  # fixed, not random
    assert sorted(np.concatenate([train.labels, test.labels])) == sorted(everything.labels)
    with pytest.raises(ValueError, match="split must be one of"):
        digits("validation")
