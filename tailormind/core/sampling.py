"""Seeded user sampling: the same users for every method, every stage and every run."""

from __future__ import annotations

import random
from collections.abc import Iterable


def sample_users(users: Iterable[str], n: int, seed: int) -> list[str]:
    """``n`` users drawn with ``random.Random(seed)`` from the sorted ids, returned sorted.

    The draw depends only on the set of ids, ``n`` and ``seed``, never on their input order;
    ``n >= len(users)`` returns them all.
    """
    ordered = sorted(users)
    if n >= len(ordered):
        return ordered
    return sorted(random.Random(seed).sample(ordered, n))
