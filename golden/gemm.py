"""Exact integer matrix products at BLAS speed.

A floating-point GEMM is exact on integers when every partial sum, in any order, is an
integer the format represents: that holds when Σ_k |a_ik|·|b_kj| ≤ 2^p for every output
(p = 24 for float32, 53 for float64). :func:`matmul_bound` computes that bound from the data
(never assumes it), and :func:`exact_matmul` picks float32 BLAS, float64 BLAS, or int64 (and
Python ints beyond int64) accordingly.
"""

import numpy as np

__all__ = ["exact_matmul", "matmul_bound", "matmul_path"]

_FLOAT_PATHS = ((np.float32, 1 << 24), (np.float64, 1 << 53))


def _operand(name, value, ndim):
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, not {array.dtype}")
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {array.shape}")
    return array


def _max_abs(array):
    if not array.size:
        return 0
    return max(abs(int(array.max())), abs(int(array.min())))


def matmul_bound(a, b):
    """An upper bound on every |partial sum| of ``a @ b``: K · max|a| · max|b| (Python int)."""
    a = _operand("a", a, 2)
    b = _operand("b", b, 2)
    return a.shape[1] * _max_abs(a) * _max_abs(b)


def matmul_path(a, b):
    """Which arithmetic :func:`exact_matmul` uses: float32, float64, int64 or object."""
    bound = matmul_bound(a, b)
    for dtype, limit in _FLOAT_PATHS:
        if bound <= limit:
            return np.dtype(dtype).name
    return "int64" if bound < 1 << 63 else "object"


def exact_matmul(a, b, *, path=None):
    """``a @ b`` of integer matrices [M, K] × [K, N], exact, as int64 (or object if wider).

    ``path`` forces one arithmetic ("float32", "float64", "int64", "object"); a float path
    that the bound does not prove exact raises ValueError.
    """
    a = _operand("a", a, 2)
    b = _operand("b", b, 2)
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"inner dimensions differ: a is {a.shape}, b is {b.shape}")
    safe = matmul_path(a, b)
    order = ("float32", "float64", "int64", "object")
    if path is None:
        path = safe
    elif path not in order:
        raise ValueError(f"path must be one of {', '.join(order)}; got {path!r}")
    elif order.index(path) < order.index(safe):
        raise ValueError(f"path={path!r} is not exact here: the bound {matmul_bound(a, b)} "
                         f"needs {safe!r} or wider")
    if path == "object":
        return a.astype(object) @ b.astype(object)
    if path == "int64":
        return a.astype(np.int64) @ b.astype(np.int64)
    product = a.astype(path) @ b.astype(path)
    return product.astype(np.int64)
