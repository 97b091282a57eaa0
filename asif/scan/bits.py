"""Floats read from their bits inside compiled loops (numba has no float16 or bfloat16
arrays): each is stored as an int16 array and converted exactly, value for value."""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def half_to_float32(typingctx: object, bits: types.Integer) -> tuple:
    """A float16's bits (uint16) as the float32 of the same value: the CPU's conversion."""

    def codegen(context: object, builder: ir.IRBuilder, signature: object, args: list) -> object:
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

    return types.float32(types.uint16), codegen


@intrinsic
def bfloat16_to_float32(typingctx: object, bits: types.Integer) -> tuple:
    """A bfloat16's bits (int16) as the float32 of the same value: its high half."""

    def codegen(context: object, builder: ir.IRBuilder, signature: object, args: list) -> object:
        wide = builder.shl(builder.zext(args[0], ir.IntType(32)), ir.Constant(ir.IntType(32), 16))
        return builder.bitcast(wide, ir.FloatType())

    return types.float32(types.int16), codegen
