"""The one ``chunks()`` every batch loop and ``IN (...)`` list is cut with."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from selfcare_ops.support.batching import chunks


def test_slices_in_order_the_last_one_shorter() -> None:
    assert list(chunks([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]
    assert list(chunks([], 1000)) == []


def test_a_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="chunks of 0 items"):
        list(chunks([1], 0))


@given(items=st.lists(st.integers(), max_size=50), size=st.integers(min_value=1, max_value=12))
def test_pieces_rebuild_the_input_within_the_size(items: list[int], size: int) -> None:
    pieces = list(chunks(items, size))
    assert [item for piece in pieces for item in piece] == items
    assert all(1 <= len(piece) <= size for piece in pieces)
