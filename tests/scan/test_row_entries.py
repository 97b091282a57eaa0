import pytest
import torch

from asif.scan.row_entries import block_maxima, entries_passing, padded_by_row


@pytest.mark.parametrize(
    ("width", "given_maxima"),
    [(64, False), (320, True), (70, False)],  # whole blocks, and a ragged last block
)
@pytest.mark.parametrize("strict", [True, False])
def test_entries_passing_matches_a_plain_comparison(width, given_maxima, strict):
    x = torch.randint(0, 20, (5, width)).float()
    threshold = torch.tensor([18.0, 19.0, 25.0, 0.0, 10.0])
    want = torch.nonzero(x > threshold[:, None] if strict else x >= threshold[:, None])
    maxima = block_maxima(x) if given_maxima else None
    rows, cols = entries_passing(x, threshold, strict, maxima)
    assert torch.equal(torch.stack([rows, cols], 1), want)


def test_block_maxima():
    x = torch.arange(128.0).view(2, 64).flip(1)
    assert torch.equal(block_maxima(x), torch.tensor([[63.0, 31.0], [127.0, 95.0]]))


def test_padded_by_row_keeps_row_major_order():
    rows, cols = torch.tensor([0, 0, 2]), torch.tensor([3, 7, 1])
    values, indices = padded_by_row(rows, cols, torch.tensor([0.5, 0.25, 0.75]), 100, 3)
    inf = float("inf")
    assert torch.equal(values, torch.tensor([[0.5, 0.25], [-inf, -inf], [0.75, -inf]]))
    assert torch.equal(indices[0], torch.tensor([103, 107])) and indices[2, 0] == 101
