import numpy as np

from asif.scan.compiled import bfloat16_to_float32, half_to_float32, jit, vectorize


def test_functions_with_no_writable_cache_folder_still_compile():
    # numba finds no cache folder for a file that does not exist: it raises at decoration
    namespace: dict = {}
    exec(compile("def twice(x):\n    return 2 * x\n", "/nonexistent/loops.py", "exec"), namespace)
    assert jit()(namespace["twice"])(21) == 42
    assert vectorize(["float64(float64)"])(namespace["twice"])(np.array([1.5]))[0] == 3.0


@jit()
def _halves(bits):  # type: ignore[no-untyped-def]
    out = np.empty(len(bits), np.float32)
    for at in range(len(bits)):
        out[at] = half_to_float32(bits[at])
    return out


@jit()
def _bfloat16s(bits):  # type: ignore[no-untyped-def]
    out = np.empty(len(bits), np.float32)
    for at in range(len(bits)):
        out[at] = bfloat16_to_float32(bits[at])
    return out


def test_every_float16_and_bfloat16_bit_pattern_converts_exactly():
    every = np.arange(65536, dtype=np.uint16)
    want = every.view(np.float16).astype(np.float32)
    got = _halves(every)
    finite = ~np.isnan(want)  # NaN payloads may differ; NaN stays NaN
    np.testing.assert_array_equal(got.view(np.uint32)[finite], want.view(np.uint32)[finite])
    assert np.isnan(got[~finite]).all()
    wide = (every.astype(np.uint32) << 16).view(np.float32)  # a bfloat16 is a float32's top half
    np.testing.assert_array_equal(
        _bfloat16s(every.view(np.int16)).view(np.uint32), wide.view(np.uint32)
    )
