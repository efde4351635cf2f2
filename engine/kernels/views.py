"""Borrowed views: the Book / Records arrays without numba's reference counting.

Every array numba handles carries a pointer to its owner's reference count, and numba
increments and decrements that count (an atomic operation each) whenever an array is
bound to a name: each helper entered, each field taken from a tuple, each inlined call
whose arguments are a Book (21 arrays) and Records (11). A rebalancing bar binds them
hundreds of times; profiled, that was three quarters of the step kernel's time.

A *borrowed* view points at the same memory but carries no owner (a null pointer, which
numba's incref/decref skip). Taken at the start of a kernel (``book = borrow_nb(book)``),
the null is a constant LLVM sees, and the refcount calls on the views in that kernel,
inlined helpers included, fold away (execute_nb: 123 incref and 341 decref call sites
down to 4 and 17). A view is valid only while the arrays it was taken from are alive,
so a kernel borrows its own arguments, uses the views inside the call and never
returns or stores them. Values are read and written exactly as through the original
arrays, so results are identical.

- ``borrow_nb(tup)``: a tuple or NamedTuple of arrays (a Book, Records), borrowed.
- ``borrow_rows_nb(tup, i)``: ``(tup[0][i], tup[1][i], ...)`` borrowed, for state
  stacked along a leading axis (one row per env of a vectorised RL env); ``i`` outside
  ``[0, len)`` of any field raises IndexError.
"""

from __future__ import annotations

from numba.core import cgutils, types
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array


def _array_tuple(tup: types.Type, min_ndim: int) -> bool:
    return isinstance(tup, types.BaseTuple) and len(tup) > 0 and all(
        isinstance(t, types.Array) and t.ndim >= min_ndim for t in tup)


def _view(context, builder, src_ty, src_val, dst_ty, index):
    """The array struct of ``src[index]`` (``src`` itself when ``index`` is None), no owner."""
    src = make_array(src_ty)(context, builder, value=src_val)
    shape = cgutils.unpack_tuple(builder, src.shape)
    strides = cgutils.unpack_tuple(builder, src.strides)
    data = src.data
    if index is not None:
        data = cgutils.pointer_add(builder, data, builder.mul(index, strides[0]))
        shape, strides = shape[1:], strides[1:]
    dst = make_array(dst_ty)(context, builder)
    populate_array(dst, data=data, shape=shape, strides=strides, itemsize=src.itemsize,
                   meminfo=None, parent=None)
    return dst._getvalue()


@intrinsic
def borrow_nb(typingctx, tup):
    if not _array_tuple(tup, 0):
        return None

    def codegen(context, builder, sig, args):
        out = context.get_constant_undef(sig.return_type)
        for k, ty in enumerate(sig.args[0]):
            view = _view(context, builder, ty, builder.extract_value(args[0], k), ty, None)
            out = builder.insert_value(out, view, k)
        return out

    return tup(tup), codegen


def _row_type(ty: types.Array) -> types.Array:
    return ty.copy(ndim=ty.ndim - 1, layout="C" if ty.layout == "C" else "A")


@intrinsic
def borrow_rows_nb(typingctx, tup, i):
    if not (_array_tuple(tup, 2) and isinstance(i, types.Integer)):
        return None
    out_ty = types.Tuple([_row_type(t) for t in tup])

    def codegen(context, builder, sig, args):
        tup_ty, i_ty = sig.args
        index = context.cast(builder, args[1], i_ty, types.intp)
        out = context.get_constant_undef(sig.return_type)
        for k, (ty, row_ty) in enumerate(zip(tup_ty, sig.return_type, strict=True)):
            value = builder.extract_value(args[0], k)
            n_rows = cgutils.unpack_tuple(builder, make_array(ty)(context, builder,
                                                                  value=value).shape)[0]
            outside = builder.or_(builder.icmp_signed("<", index, index.type(0)),
                                  builder.icmp_signed(">=", index, n_rows))
            with cgutils.if_unlikely(builder, outside):
                context.call_conv.return_user_exc(
                    builder, IndexError, ("row index outside the stacked state",))
            out = builder.insert_value(
                out, _view(context, builder, ty, value, row_ty, index), k)
        return out

    return out_ty(tup, i), codegen
