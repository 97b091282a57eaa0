import pytest

from asif.store.table import AnchorTable
from tests.store.rows import ENC


@pytest.fixture
def table(tmp_path):
    """An empty anchor table (encoders img-enc / txt-enc, 8-d and 4-d)."""
    return AnchorTable.create_or_open(str(tmp_path / "db"), **ENC)
