"""Human ratings of the bench's posts, durable in ``WORKSPACE/bench/ratings.sqlite``.

One row per (rater, item): novelty and aesthetic on 1–5, hallucination 0/1, an optional comment;
rating an item again replaces the row (``revisions`` counts the saves). Each row also keeps the
item's method and user, so an analysis never depends on the current rating set. SQLite in WAL
mode with ``synchronous=FULL``: every save is one ``BEGIN IMMEDIATE`` transaction, durable when
it returns, and several raters (threads, processes, API replicas) can save at once. The store
also holds a random secret (``meta``) that anonymises item ids and signs rater sessions.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tailormind.core.atomic import write_text_atomic
from tailormind.errors import ConfigError, CorruptFileError

RATINGS_FILE = "ratings.sqlite"
SCALE = (1, 5)
MAX_COMMENT_CHARS = 2000
#: A rater's name: 1–40 letters, digits, spaces and ``. _ @ -``; not only spaces.
RATER_NAME = re.compile(r"^[\w .@-]{1,40}$")
EXPORT_COLUMNS = ("rater", "item_id", "method", "user_id", "novelty", "aesthetic",
                  "hallucination", "comment", "created_at", "updated_at", "revisions")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ratings (
    rater TEXT NOT NULL, item_id TEXT NOT NULL, method TEXT NOT NULL, user_id TEXT NOT NULL,
    novelty INTEGER NOT NULL CHECK (novelty BETWEEN 1 AND 5),
    aesthetic INTEGER NOT NULL CHECK (aesthetic BETWEEN 1 AND 5),
    hallucination INTEGER NOT NULL CHECK (hallucination IN (0, 1)),
    comment TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    revisions INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (rater, item_id));
"""


@dataclass(frozen=True)
class Rating:
    rater: str
    item_id: str
    method: str
    user_id: str
    novelty: int
    aesthetic: int
    hallucination: int
    comment: str = ""
    created_at: str = ""
    updated_at: str = ""
    revisions: int = 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def valid_rater(name: str) -> str:
    """The rater's name, stripped; a ConfigError says what a name may hold."""
    stripped = (name or "").strip()
    if not RATER_NAME.match(stripped):
        raise ConfigError("a rater name is 1–40 letters, digits, spaces or . _ @ -")
    return stripped


def valid_scores(novelty: Any, aesthetic: Any, hallucination: Any, comment: Any) -> None:
    """A ConfigError naming the first score out of range (bools and floats are refused)."""
    for name, value, allowed in (("novelty", novelty, range(SCALE[0], SCALE[1] + 1)),
                                 ("aesthetic", aesthetic, range(SCALE[0], SCALE[1] + 1)),
                                 ("hallucination", hallucination, (0, 1))):
        if type(value) is not int or value not in allowed:
            raise ConfigError(f"{name}: {value!r} is not one of "
                              f"{', '.join(str(v) for v in allowed)}")
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS:
        raise ConfigError(f"comment: text of at most {MAX_COMMENT_CHARS} characters")


def _spreadsheet_safe(value: Any) -> Any:
    """Text a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``) gets a ``'``."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RatingStore:
    """The ratings of one workspace (``bench/ratings.sqlite``, created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._connection() as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
                db.execute("INSERT OR IGNORE INTO meta VALUES ('secret', ?)",
                           (secrets.token_hex(32),))
        except sqlite3.DatabaseError as exc:
            raise CorruptFileError(f"{path}: not a ratings database ({exc}); move it away to "
                                   "start a new one") from None

    @classmethod
    def of(cls, bench_dir: Path) -> RatingStore:
        return cls(bench_dir / RATINGS_FILE)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=30000")
            yield db
        finally:
            db.close()

    def secret(self) -> str:
        with self._connection() as db:
            return db.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()[0]

    def save(self, rater: str, item_id: str, method: str, user_id: str, *, novelty: int,
             aesthetic: int, hallucination: int, comment: str = "") -> Rating:
        """Store (or replace) ``rater``'s rating of ``item_id``; the row as stored."""
        rater = valid_rater(rater)
        valid_scores(novelty, aesthetic, hallucination, comment)
        now = _now()
        with self._connection() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO ratings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) "
                "ON CONFLICT (rater, item_id) DO UPDATE SET novelty = excluded.novelty, "
                "aesthetic = excluded.aesthetic, hallucination = excluded.hallucination, "
                "comment = excluded.comment, updated_at = excluded.updated_at, "
                "method = excluded.method, user_id = excluded.user_id, "
                "revisions = ratings.revisions + 1",
                (rater, item_id, method, user_id, novelty, aesthetic, hallucination, comment,
                 now, now))
            row = db.execute("SELECT * FROM ratings WHERE rater = ? AND item_id = ?",
                             (rater, item_id)).fetchone()
            db.execute("COMMIT")
        return Rating(*row)

    def ratings(self, rater: str | None = None) -> list[Rating]:
        """Every rating (of one rater), by rater then item."""
        query, args = "SELECT * FROM ratings", ()
        if rater is not None:
            query, args = query + " WHERE rater = ?", (rater,)
        with self._connection() as db:
            rows = db.execute(query + " ORDER BY rater, item_id", args).fetchall()
        return [Rating(*row) for row in rows]

    def export_csv(self, target: Path) -> int:
        """Write every rating to ``target`` as CSV (:data:`EXPORT_COLUMNS`; text a spreadsheet
        would run as a formula is prefixed with ``'``), atomically; the row count."""
        rows = self.ratings()
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        writer.writerows({k: _spreadsheet_safe(v) for k, v in r.as_dict().items()} for r in rows)
        write_text_atomic(target, buffer.getvalue())
        return len(rows)
