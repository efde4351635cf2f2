"""The bar's orders run in numpy's stable order of their values (step._sort_orders_nb)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.kernels.step import _sort_orders_nb


@pytest.mark.parametrize("m", [0, 1, 2, 7, 32, 33, 200])
def test_order_sequence_is_numpys_stable_argsort(m):
    rng = np.random.default_rng(m)
    for _ in range(20):
        n = m + 5
        # few distinct values, so ties are common (equal-sized orders keep asset order)
        value = np.round(rng.normal(0, 1, n), 1)
        value[rng.random(n) < 0.1] = -0.0
        idx = rng.permutation(n).astype(np.int64)
        want = idx[:m][np.argsort(value[:m], kind="mergesort")]
        got_value, got_idx = value.copy(), idx.copy()
        _sort_orders_nb(got_value, got_idx, m)
        assert got_idx[:m].tolist() == want.tolist()
        assert got_idx[m:].tolist() == idx[m:].tolist()
