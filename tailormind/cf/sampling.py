"""Uniform BPR triples (u, i, j): every train interaction once per epoch, j never seen in train."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class BPRSampler:
    """Shuffles the train pairs each epoch and draws one negative per pair by rejection."""

    def __init__(self, users: np.ndarray, items: np.ndarray, n_items: int) -> None:
        if len(users) == 0:
            raise ValueError("no train interactions to sample from")
        self.users = users.astype(np.int64)
        self.items = items.astype(np.int64)
        self.n_items = n_items
        self.seen = np.unique(self.users * n_items + self.items)

    def _is_seen(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self.n_items + items
        pos = np.searchsorted(self.seen, keys)
        pos = np.minimum(pos, len(self.seen) - 1)
        return self.seen[pos] == keys

    def negatives(self, users: np.ndarray, rng: np.random.Generator, max_rounds: int = 100) -> np.ndarray:
        """One uniform unseen item per user (a user who has seen everything keeps a seen one)."""
        neg = rng.integers(0, self.n_items, size=len(users))
        for _ in range(max_rounds):
            bad = self._is_seen(users, neg)
            if not bad.any():
                break
            neg[bad] = rng.integers(0, self.n_items, size=int(bad.sum()))
        return neg

    def epoch(self, batch_size: int, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Batches of (users, positives, negatives) covering every train pair once."""
        order = rng.permutation(len(self.users))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            users = self.users[idx]
            yield users, self.items[idx], self.negatives(users, rng)

    def batches_per_epoch(self, batch_size: int) -> int:
        return -(-len(self.users) // batch_size)
