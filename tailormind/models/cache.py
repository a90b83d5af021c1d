"""The one on-disk cache of model calls: key = sha256(backend, model, kind, inputs, params).

A SQLite file in WAL mode, so several processes on one machine (Ray workers, the CLI) share it
safely; values are JSON, float32 arrays, or raw bytes (PNG, mp4). A re-run of a stage with the same
inputs and params reads its answers instead of recomputing them, which also makes sampled answers
reproducible. On a filesystem shared between machines, give each node its own ``cache_dir``.

:func:`cached_batch` is the one way a role goes through the cache: look every key up, compute
the misses in one call, store them, count the hits.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

CACHE_FILE = "calls.sqlite"
T = TypeVar("T")


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tailormind``, else ``~/.cache/tailormind``."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "tailormind"


class CallCache:
    """Get/put by key; thread-safe (one connection per thread), process-safe (SQLite locking)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / CACHE_FILE
        self._local = threading.local()
        with self._connection() as db:
            db.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, kind TEXT, "
                       "value BLOB)")

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    @staticmethod
    def key(backend: str, model: str, kind: str, payload: Any) -> str:
        blob = json.dumps([backend, model, kind, payload], sort_keys=True, ensure_ascii=False,
                          default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _get(self, key: str) -> tuple[str, bytes] | None:
        row = self._connection().execute("SELECT kind, value FROM calls WHERE key = ?",
                                         (key,)).fetchone()
        return (row[0], row[1]) if row else None

    def _put(self, key: str, kind: str, value: bytes) -> None:
        self._connection().execute("INSERT OR REPLACE INTO calls VALUES (?, ?, ?)",
                                   (key, kind, value))

    def get_json(self, key: str) -> Any | None:
        row = self._get(key)
        return json.loads(row[1]) if row and row[0] == "json" else None

    def put_json(self, key: str, value: Any) -> None:
        self._put(key, "json", json.dumps(value, ensure_ascii=False).encode())

    def get_array(self, key: str) -> np.ndarray | None:
        row = self._get(key)
        return np.load(io.BytesIO(row[1]), allow_pickle=False) if row and row[0] == "npy" else None

    def put_array(self, key: str, value: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(value), allow_pickle=False)
        self._put(key, "npy", buffer.getvalue())

    def get_bytes(self, key: str) -> bytes | None:
        row = self._get(key)
        return bytes(row[1]) if row and row[0] == "bytes" else None

    def put_bytes(self, key: str, value: bytes) -> None:
        self._put(key, "bytes", value)

    def __len__(self) -> int:
        return int(self._connection().execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def clear(self) -> int:
        """Delete every entry; returns how many there were."""
        n = len(self)
        self._connection().execute("DELETE FROM calls")
        return n


@dataclass(frozen=True)
class Codec(Generic[T]):
    """How one kind of result is read from (None: a miss) and written to the cache under a key."""

    load: Callable[[CallCache, str], T | None]
    store: Callable[[CallCache, str, T], None]


def cached_batch(cache: CallCache | None, keys: Sequence[str | None], codec: Codec[T],
                 compute: Callable[[list[int]], Sequence[T]], stats: Counter[str]) -> list[T]:
    """One result per key, in order: hits are loaded (each counted in ``stats["cache_hits"]``),
    the misses' indices go to ``compute`` in one call, which returns their results in that order;
    those are stored under their keys. A key of None (no cache) is always a miss, never stored."""
    results: list[T | None] = [None] * len(keys)
    todo = []
    for i, key in enumerate(keys):
        hit = codec.load(cache, key) if key is not None and cache is not None else None
        if hit is not None:
            results[i] = hit
            stats["cache_hits"] += 1
        else:
            todo.append(i)
    if todo:
        for i, value in zip(todo, compute(todo), strict=True):
            results[i] = value
            key = keys[i]
            if key is not None and cache is not None:
                codec.store(cache, key, value)
    return [r for r in results if r is not None]
