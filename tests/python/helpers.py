"""Reference checks shared by the test modules."""

import numpy as np

EPS = {np.dtype(np.float32): float(np.finfo(np.float32).eps), np.dtype(np.float64): 2.0**-52}


def check_matmul(got: np.ndarray, a: np.ndarray, b: np.ndarray, dtype=None) -> None:
    """Asserts that ``got`` is ``a @ b`` to within the rounding of ``dtype`` arithmetic.

    The reference is NumPy in float64 on the same (already rounded) inputs; each element may
    differ by at most ``4 (k + 1) eps (|a| @ |b|)``, the classic bound for a sum of k products.
    NaN and inf must appear exactly where the reference has them.
    """
    dtype = np.dtype(dtype or got.dtype)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    want = np.matmul(a64, b64)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == dtype, (got.dtype, dtype)
    k = a.shape[-1]
    with np.errstate(invalid="ignore"):
        bound = 4 * (k + 1) * EPS[dtype] * np.matmul(np.abs(a64), np.abs(b64)) + 1e-300
    finite = np.isfinite(want)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
    err = np.abs(got.astype(np.float64) - want)[finite]
    assert np.all(err <= bound[finite]), (
        f"max error {err.max():.3e}, bound {bound[finite].min():.3e}"
    )


def rel_error(got: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Relative Frobenius error of ``got`` against the float64 product."""
    want = a.astype(np.float64) @ b.astype(np.float64)
    return float(np.linalg.norm(got.astype(np.float64) - want) / np.linalg.norm(want))
