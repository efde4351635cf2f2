"""Borrowed views (engine.kernels.views): same memory, no owner, rows bounds-checked."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from engine.kernels import Book, Records, borrow_nb, borrow_rows_nb, new_book, new_records


@njit
def _write_through_borrowed(book, recs):
    b = borrow_nb(book)
    r = borrow_nb(recs)
    b.qty[1] = 2.5
    b.counts[0] += 1
    r.orders[0].asset = 7
    r.positions[0, 1] = b.qty[1]
    return b.qty.shape[0], r.positions.shape[0], b.qty.strides[0]


@njit
def _write_row(books, recs, e):
    b = Book(*borrow_rows_nb(books, e))
    r = Records(*borrow_rows_nb(recs, e))
    b.cash[0] -= 1.0
    b.qty[2] = -3.0
    r.equity[4] = 9.0
    r.fills[1].qty = 4.0
    return b.qty.shape[0], r.equity.shape[0]


def test_borrowed_views_write_into_the_original_arrays():
    book = new_book(3, 100.0)
    recs = new_records(5, 3, 4)
    assert _write_through_borrowed(book, recs) == (3, 5, 8)
    assert book.qty.tolist() == [0.0, 2.5, 0.0]
    assert book.counts[0] == 1
    assert recs.orders[0]["asset"] == 7
    assert recs.positions[0, 1] == 2.5


def test_borrowed_rows_are_the_rows_of_the_stacked_state():
    books = tuple(np.stack([f] * 3) for f in new_book(4, 10.0))
    recs = tuple(np.stack([f] * 3) for f in new_records(6, 4, 2, record_positions=False))
    assert _write_row(books, recs, 1) == (4, 6)
    cash, qty = books[0], books[1]
    assert cash[:, 0].tolist() == [10.0, 9.0, 10.0]
    assert qty[1].tolist() == [0.0, 0.0, -3.0, 0.0]
    assert not qty[[0, 2]].any()
    equity = recs[Records._fields.index("equity")]
    assert equity[1, 4] == 9.0 and np.isnan(equity[[0, 2], 4]).all()
    assert recs[Records._fields.index("fills")][1, 1]["qty"] == 4.0


@pytest.mark.parametrize("e", [-1, 3])
def test_a_row_outside_the_stack_raises(e):
    books = tuple(np.stack([f] * 3) for f in new_book(4, 10.0))
    recs = tuple(np.stack([f] * 3) for f in new_records(6, 4, 2, record_positions=False))
    with pytest.raises(IndexError, match="row index outside"):
        _write_row(books, recs, e)
