"""golden.gemm: the BLAS paths are exact exactly where the computed bound says so."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from golden.gemm import exact_matmul, matmul_bound, matmul_path


def python_matmul(a, b):
    a, b = a.tolist(), b.tolist()
    return [[sum(a[i][k] * b[k][j] for k in range(len(b))) for j in range(len(b[0]))]
            for i in range(len(a))]


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 0, 2), (5, 7, 3), (16, 33, 9)])
def test_matches_python_ints(m, k, n):
    rng = np.random.default_rng(m * 100 + k)
    a = rng.integers(-128, 128, size=(m, k), dtype=np.int8)
    b = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
    assert exact_matmul(a, b).tolist() == python_matmul(a, b) if k else \
        (exact_matmul(a, b) == 0).all()


def test_paths_switch_at_the_exactness_limits():
    # K·max|a|·max|b| = 2^24 is still exact in float32; one more and float64 takes over
    a = np.full((2, 1 << 10), -128, np.int64)
    b = np.full((1 << 10, 2), -128, np.int64)
    assert matmul_bound(a, b) == 1 << 24
    assert matmul_path(a, b) == "float32"
    assert exact_matmul(a, b).tolist() == [[1 << 24] * 2] * 2
    b[0, 0] = -129
    assert matmul_path(a, b) == "float64"
    # past 2^53 the float64 path would lose low bits: int64 is used and stays exact
    wide_a = np.full((1, 3), (1 << 26) + 1, np.int64)
    wide_b = np.full((3, 1), (1 << 26) + 1, np.int64)  # the sum is odd and above 2^53
    assert matmul_bound(wide_a, wide_b) > 1 << 53
    assert matmul_path(wide_a, wide_b) == "int64"
    assert exact_matmul(wide_a, wide_b).tolist() == python_matmul(wide_a, wide_b)
    as_float = (wide_a.astype(np.float64) @ wide_b.astype(np.float64))[0, 0]
    assert int(as_float) != python_matmul(wide_a, wide_b)[0][0]  # float64 would be wrong
    huge = np.array([[1 << 40]], np.int64)
    assert matmul_path(huge, huge) == "object"
    assert exact_matmul(huge, huge).tolist() == [[1 << 80]]


def test_forcing_an_inexact_path_is_refused():
    a = np.full((1, 4), 1 << 20, np.int64)
    with pytest.raises(ValueError, match="path='float32' is not exact here"):
        exact_matmul(a, a.T, path="float32")
    with pytest.raises(ValueError, match="path must be one of"):
        exact_matmul(a, a.T, path="float16")


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.int16, st.tuples(st.integers(1, 6), st.integers(1, 40))),
       st.integers(1, 5), st.data())
def test_blas_paths_equal_the_int64_path(a, n, data):
    b = data.draw(hnp.arrays(np.int16, (a.shape[1], n)))
    reference = exact_matmul(a, b, path="int64")
    assert reference.tolist() == python_matmul(a.astype(np.int64), b.astype(np.int64))
    for path in ("float32", "float64"):
        if ("float32", "float64", "int64").index(path) >= \
                ("float32", "float64", "int64", "object").index(matmul_path(a, b)):
            assert (exact_matmul(a, b, path=path) == reference).all()


def test_bad_operands_are_named():
    with pytest.raises(TypeError, match="a must hold integers"):
        exact_matmul(np.ones((2, 2)), np.ones((2, 2), np.int64))
    with pytest.raises(ValueError, match="inner dimensions differ"):
        exact_matmul(np.ones((2, 3), np.int64), np.ones((2, 2), np.int64))
    with pytest.raises(ValueError, match="b must be 2-D"):
        exact_matmul(np.ones((2, 3), np.int64), np.ones(3, np.int64))
