"""A table as a Ray dataset of ``blocks`` contiguous blocks, without a repartition step.

``from_arrow(table).repartition(n)`` adds an all-to-all operator whose tasks need a CPU of their
own; when the map actors hold every CPU of the cluster (``--workers 2`` on a 2-CPU machine) those
tasks never get one and the job hangs with its actors "pending". Slicing the table on the driver
and handing Ray one table per block needs no task at all.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa


def slices(table: pa.Table, blocks: int) -> list[pa.Table]:
    """``table`` cut into ``min(blocks, rows)`` contiguous slices of near-equal size (sizes differ
    by at most one row; concatenated they are the table)."""
    rows = table.num_rows
    count = max(1, min(blocks, rows))
    base, extra = divmod(rows, count)
    out, start = [], 0
    for i in range(count):
        size = base + (1 if i < extra else 0)
        out.append(table.slice(start, size))
        start += size
    return out


def blocks_dataset(table: pa.Table, blocks: int) -> Any:
    """A ``ray.data.Dataset`` with one block per slice of :func:`slices`."""
    import ray

    return ray.data.from_arrow(slices(table, blocks))
