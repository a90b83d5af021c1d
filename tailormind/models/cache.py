"""The one on-disk cache of model calls: key = sha256(backend, model, kind, inputs, params).

A SQLite file in WAL mode, so several processes on one machine (Ray workers, the CLI) share it
safely; values are JSON, float32 arrays, or raw bytes (PNG, mp4). A re-run of a stage with the same
inputs and params reads its answers instead of recomputing them, which also makes sampled answers
reproducible. On a filesystem shared between machines, give each node its own ``cache_dir``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np

CACHE_FILE = "calls.sqlite"


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
