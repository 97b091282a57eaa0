import threading

import pytest
import torch

import asif.scan.scratch
from asif.scan.scratch import ALIGN, MAX_IDLE, scratch


@pytest.fixture(autouse=True)
def empty_pool(monkeypatch):
    monkeypatch.setattr(asif.scan.scratch, "_idle", [])


def test_tensors_have_their_shapes_and_do_not_overlap():
    with scratch(((3, 5), torch.int16), ((7,), torch.float32), ((0, 4), torch.bfloat16)) as parts:
        a, b, c = parts
        assert (a.shape, a.dtype, b.shape, b.dtype, c.shape) == (
            (3, 5),
            torch.int16,
            (7,),
            torch.float32,
            (0, 4),
        )
        assert a.data_ptr() % ALIGN == 0 and b.data_ptr() % ALIGN == 0
        a.fill_(-1)
        b.fill_(2.5)
        assert (a == -1).all() and (b == 2.5).all()


def test_a_released_buffer_is_reused_and_idle_memory_is_bounded():
    with scratch(((1000,), torch.float32)) as (first,):
        pointer = first.data_ptr()
    with scratch(((10,), torch.float32)) as (second,):  # smaller: the same memory
        assert second.data_ptr() == pointer
    held = [scratch(((100 * (i + 1),), torch.float32)) for i in range(MAX_IDLE + 2)]
    for context in held:
        context.__enter__()
    for context in held:
        context.__exit__(None, None, None)
    sizes = sorted(b.numel() for b in asif.scan.scratch._idle)
    assert len(sizes) == MAX_IDLE and sizes[-1] >= 4000  # the largest are kept


def test_concurrent_users_never_share_a_buffer():
    seen: list[int] = []
    barrier = threading.Barrier(4)

    def use() -> None:
        with scratch(((256,), torch.float32)) as (t,):
            seen.append(t.data_ptr())
            barrier.wait(timeout=10)  # all four hold theirs at once

    threads = [threading.Thread(target=use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 4
