"""Tables cut into Ray blocks on the driver (no repartition task that could starve)."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from tailormind.data.ray_blocks import slices


@given(rows=st.integers(0, 60), blocks=st.integers(1, 80))
def test_slices_cover_the_table_in_near_equal_parts(rows: int, blocks: int) -> None:
    table = pa.table({"x": list(range(rows))})
    parts = slices(table, blocks)
    assert len(parts) == max(1, min(blocks, rows))
    assert pa.concat_tables(parts).column("x").to_pylist() == list(range(rows))
    sizes = [p.num_rows for p in parts]
    assert max(sizes) - min(sizes) <= 1


def test_slices_by_hand() -> None:
    table = pa.table({"x": list(range(7))})
    assert [p.column("x").to_pylist() for p in slices(table, 3)] == [[0, 1, 2], [3, 4], [5, 6]]
