"""How the scans' loops are compiled (numba), and the float formats they read from bits.

Compiled code is cached on disk beside its module, else in the user's cache folder; a
read-only install with no writable home compiles anew in each process instead of failing
at import (numba raises RuntimeError there). numba has no float16 or bfloat16 arrays: they
are stored as 16-bit integers and converted exactly, value for value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numba
from llvmlite import ir
from numba import types
from numba.extending import intrinsic


def _cached(decorator: Callable[..., Any], *args: Any, **options: Any) -> Callable[..., Any]:
    def wrap(function: Callable[..., Any]) -> Any:
        try:
            return decorator(*args, cache=True, **options)(function)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return decorator(*args, **options)(function)

    return wrap


def jit(**options: Any) -> Callable[..., Any]:
    """`numba.njit`, releasing the GIL (loops run in threads), cached where it can be."""
    return _cached(numba.njit, nogil=True, **options)


def vectorize(signatures: list[str]) -> Callable[..., Any]:
    """`numba.vectorize`: a ufunc over arrays, callable on scalars in compiled code."""
    return _cached(numba.vectorize, signatures)


if TYPE_CHECKING:  # how compiled code calls them

    def half_to_float32(bits: Any) -> Any: ...

    def bfloat16_to_float32(bits: Any) -> Any: ...

    def float32_bits(value: Any) -> Any: ...

else:

    @intrinsic
    def half_to_float32(typingctx: object, bits: types.Integer) -> tuple:
        """A float16's bits (uint16) as the float32 of the same value: the CPU's conversion."""

        def codegen(
            context: object, builder: ir.IRBuilder, signature: object, args: list
        ) -> object:
            return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

        return types.float32(types.uint16), codegen

    @intrinsic
    def bfloat16_to_float32(typingctx: object, bits: types.Integer) -> tuple:
        """A bfloat16's bits (int16) as the float32 of the same value: its high half."""

        def codegen(
            context: object, builder: ir.IRBuilder, signature: object, args: list
        ) -> object:
            wide = builder.shl(
                builder.zext(args[0], ir.IntType(32)), ir.Constant(ir.IntType(32), 16)
            )
            return builder.bitcast(wide, ir.FloatType())

        return types.float32(types.int16), codegen

    @intrinsic
    def float32_bits(typingctx: object, value: types.Float) -> tuple:
        """A float32's bits as uint32."""

        def codegen(
            context: object, builder: ir.IRBuilder, signature: object, args: list
        ) -> object:
            return builder.bitcast(args[0], ir.IntType(32))

        return types.uint32(types.float32), codegen
