"""User-facing errors: one line that names the file, row and column where the problem is.

Anything raised as :class:`TailorMindError` is printed by the CLI as ``error: <message>`` with a
non-zero exit code and no traceback; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class TailorMindError(Exception):
    """An error the user can fix (bad input, bad config, missing workspace)."""

    exit_code: int = 2


class ConfigError(TailorMindError):
    """A config file or override that does not validate; the message names the key."""


class DataError(TailorMindError):
    """A malformed input file; the message names file, row and column where known."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
        unit: str = "row",
    ) -> None:
        """``unit`` is ``"line"`` for text files (header = line 1), ``"row"`` (1-based) otherwise."""
        self.file = str(file) if file is not None else None
        self.row = row
        self.column = column
        self.detail = message
        where = []
        if self.file is not None:
            where.append(self.file)
        if row is not None:
            where.append(f"{unit} {row}")
        if column is not None:
            where.append(f"column '{column}'")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class WorkspaceError(TailorMindError):
    """A directory that is not a workspace, or a stage run before the stage it needs."""


class ModelError(TailorMindError):
    """A model that cannot be loaded or called: missing path, too big, server down or failing."""


class ModelNotConfiguredError(ModelError):
    """A role whose backend is ``none``: callers fall back and count it (``docs/architecture.md``,
    "Model roles and backends")."""


class ModelInputError(ModelError):
    """An input a model cannot take: an image that does not decode, an empty storyboard."""


class NotFoundError(TailorMindError):
    """An id the workspace does not have: a user, an item, a post, a job."""


class CorruptFileError(WorkspaceError):
    """A file the project wrote that exists but does not read (empty, truncated, not JSON):
    reported with its path and reason, never read as "missing"."""
