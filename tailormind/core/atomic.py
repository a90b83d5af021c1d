"""The one way the project writes a file or a directory: durably, and all or nothing.

A file is written to a hidden temporary beside its final name, flushed to disk (``fsync``),
renamed over the final name and its directory is flushed, so a crash or a ``kill -9`` at any
moment leaves either the old content or the new one, complete, and never loses a rename that
already returned (:func:`atomic_path` and the ``write_*_atomic`` helpers).

A directory (a post bundle, a workspace) is built in a hidden staging sibling and, when
complete, swapped with the live one in one step (Linux ``renameat2(RENAME_EXCHANGE)``), so a
reader never finds it missing (:func:`atomic_dir`). Where the filesystem cannot exchange, the
old directory is first renamed to ``.<name>.old``: :func:`live_path` lets a reader fall back to
it in that moment, and :func:`recover_dir` puts it back after a crash.

Names, all hidden (a leading dot) so that no scan of live names ever sees them:
``.<name>.tmp-<hex><suffix>`` (a file being written), ``.<name>.stage-<hex>`` (a directory being
built, or the previous one just swapped out) and ``.<name>.old``.

Reading what the project wrote is strict: :func:`read_json_record` returns None only for a file
that does not exist; an empty, truncated or non-JSON one raises
:class:`~tailormind.errors.CorruptFileError` naming the path and the reason.

Bottom layer: imports only the standard library (and pyarrow, lazily, for tables).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailormind.errors import CorruptFileError

if TYPE_CHECKING:
    import pyarrow as pa

TEMP_MARK = ".tmp-"
STAGE_MARK = ".stage-"
OLD_SUFFIX = ".old"
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.tmp-[0-9a-f]{16}(\..*)?$")
_STAGE_NAME = re.compile(r"^\.(?P<name>.+)\.stage-[0-9a-f]{16}$")
_OLD_NAME = re.compile(r"^\.(?P<name>.+)\.old$")
#: A leftover staging directory or temporary file is removed only once nobody touched it for
#: this long, so a writer still at work (another process) keeps its stage.
LEFTOVER_AGE_S = 600.0
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
#: errno values that mean "this system or filesystem cannot exchange", not "this failed".
_NO_EXCHANGE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}


# -- flushing ----------------------------------------------------------------------------------

def fsync_file(path: Path) -> None:
    """Flush one file's data and metadata to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    """Flush a directory's entries (a rename or a new name in it) to disk. Filesystems that
    cannot sync a directory (EINVAL) are accepted as they are."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


def fsync_tree(directory: Path) -> None:
    """Flush every file and directory under ``directory`` (a staged directory before commit)."""
    for current, _, files in os.walk(directory):
        for name in files:
            fsync_file(Path(current) / name)
        fsync_dir(Path(current))


def ensure_dir(directory: Path) -> None:
    """``mkdir -p``; each directory it creates is made durable in its parent."""
    directory = Path(directory)
    missing: list[Path] = []
    while not directory.is_dir():
        missing.append(directory)
        if directory.parent == directory:
            break
        directory = directory.parent
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            if not path.is_dir():
                raise
            continue
        fsync_dir(path.parent)


# -- files -------------------------------------------------------------------------------------

def temp_name(final: Path, suffix: str = ".tmp") -> Path:
    """A fresh hidden temporary name beside ``final`` (one :func:`recover_dir` recognises)."""
    return final.with_name(f".{final.name}{TEMP_MARK}{secrets.token_hex(8)}{suffix}")


def new_temp_file(final: Path, suffix: str = ".tmp") -> Path:
    """Create an empty temporary file beside ``final`` (permissions as the umask says)."""
    ensure_dir(final.parent)
    while True:
        path = temp_name(final, suffix)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return path


@contextmanager
def atomic_path(final: Path, *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``final`` for the caller to write. When the block ends
    normally the file is flushed, renamed over ``final`` and the directory flushed; when it
    raises, the temporary is removed and ``final`` is untouched. ``suffix`` ends the temporary's
    name (for writers that go by the extension)."""
    final = Path(final)
    tmp = new_temp_file(final, suffix)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, final)
        fsync_dir(final.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, all or nothing."""
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def write_text_atomic(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``text``, all or nothing."""
    write_bytes_atomic(path, text.encode(encoding))


def write_json_atomic(path: Path, data: Any, *, ensure_ascii: bool = True) -> None:
    """Replace ``path`` with ``data`` as indented JSON and a final newline, all or nothing."""
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=ensure_ascii) + "\n")


def write_table_atomic(path: Path, table: pa.Table, **options: Any) -> None:
    """Replace ``path`` with ``table`` as Parquet (``options`` go to ``pq.write_table``)."""
    write_tables_atomic({Path(path): table}, **options)


def write_tables_atomic(tables: Mapping[Path, pa.Table], **options: Any) -> None:
    """Write every table to its temporary first, then rename them all: a failure while writing
    any of them replaces none."""
    import pyarrow.parquet as pq

    with ExitStack() as commit:  # each atomic_path commits as the stack unwinds
        for path, table in tables.items():
            pq.write_table(table, commit.enter_context(atomic_path(Path(path))), **options)


# -- directories -------------------------------------------------------------------------------

def stage_name(final: Path) -> Path:
    """A fresh hidden staging-directory name beside ``final``."""
    return final.with_name(f".{final.name}{STAGE_MARK}{secrets.token_hex(8)}")


def old_name(final: Path) -> Path:
    """Where the previous ``final`` waits while a replace without exchange is under way."""
    return final.with_name(f".{final.name}{OLD_SUFFIX}")


@lru_cache(maxsize=1)
def _renameat2() -> Any:
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                         ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def exchange(first: Path, second: Path) -> bool:
    """Swap two existing paths in one step (``renameat2(RENAME_EXCHANGE)``, glibc >= 2.28).
    False when this system or filesystem cannot; any other failure raises ``OSError``."""
    function = _renameat2()
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second),
                _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _NO_EXCHANGE:
        return False
    raise OSError(code, f"cannot exchange {first} and {second}: {os.strerror(code)}")


def commit_dir(stage: Path, final: Path) -> None:
    """Make the complete directory ``stage`` the new ``final``, flushed to disk. An existing
    ``final`` is swapped out in one step and then removed; without exchange it goes to
    ``.<name>.old`` for the instant between two renames (see :func:`live_path`)."""
    fsync_tree(stage)
    parent = final.parent
    if not os.path.lexists(final):
        os.rename(stage, final)
        fsync_dir(parent)
        return
    if exchange(stage, final):
        fsync_dir(parent)
        shutil.rmtree(stage, ignore_errors=True)  # the previous final, swapped out
        return
    old = old_name(final)
    shutil.rmtree(old, ignore_errors=True)
    os.rename(final, old)
    try:
        os.rename(stage, final)
    except BaseException:
        if not os.path.lexists(final):
            try:
                os.rename(old, final)
            except OSError:  # recovery already put it back
                pass
        raise
    fsync_dir(parent)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_dir(final: Path, *, replace: bool = True) -> Iterator[Path]:
    """Yield an empty hidden staging directory beside ``final`` for the caller to fill. When
    the block ends normally it becomes ``final`` whole (:func:`commit_dir`); when it raises it
    is removed and ``final`` is untouched. With ``replace=False`` an existing ``final`` wins
    and the staged copy is dropped."""
    final = Path(final)
    ensure_dir(final.parent)
    stage = stage_name(final)
    stage.mkdir()
    try:
        yield stage
        if replace or not os.path.lexists(final):
            commit_dir(stage, final)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def is_hidden(name: str) -> bool:
    """Temporaries, staging and ``.old`` directories all have hidden names."""
    return name.startswith(".")


def live_path(final: Path, inside: str = "") -> Path | None:
    """``final`` if it exists (with the entry ``inside`` it, if given); while a replace without
    exchange is between its two renames, the previous copy at ``.<name>.old``; None when there
    is neither."""
    final = Path(final)
    for _ in range(3):  # the writer may finish the replace between our looks
        for place in (final, old_name(final)):
            if (place / inside if inside else place).exists():
                return place
    return None


def recover_dir(parent: Path, *, min_age_s: float = LEFTOVER_AGE_S) -> list[str]:
    """Repair what killed writers left directly in ``parent``: a ``.<name>.old`` whose
    ``<name>`` is missing is put back, one whose ``<name>`` exists is removed; staging
    directories and temporary files untouched for ``min_age_s`` are removed. Returns one line
    per repair."""
    done: list[str] = []
    if not Path(parent).is_dir():
        return done
    now = time.time()
    for entry in sorted(Path(parent).iterdir()):
        name = entry.name
        if not is_hidden(name):
            continue
        if old := _OLD_NAME.match(name):
            final = entry.with_name(old["name"])
            if os.path.lexists(final):
                _remove(entry)
                done.append(f"removed {entry} (left over; {final.name} is in place)")
                continue
            try:
                os.rename(entry, final)
            except OSError:  # a writer put a new one in place meanwhile
                continue
            fsync_dir(Path(parent))
            done.append(f"restored {final} from {name}")
        elif _STAGE_NAME.match(name) or _TEMP_NAME.match(name):
            try:
                age = now - entry.lstat().st_mtime
            except FileNotFoundError:
                continue
            if age >= min_age_s:
                _remove(entry)
                done.append(f"removed {entry} (unfinished write)")
    return done


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# -- reading -----------------------------------------------------------------------------------

def read_json_record(path: Path, what: str = "file") -> Any | None:
    """The JSON in ``path``; None only when the file does not exist. An empty, unreadable,
    truncated or non-JSON file raises :class:`CorruptFileError` naming the path and why
    (``what`` names the kind of file in the message, e.g. ``"manifest"``)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise CorruptFileError(f"{path}: corrupt {what} (a directory, not a file)") from None
    except OSError as exc:
        raise CorruptFileError(f"{path}: unreadable {what} ({exc.strerror or exc})") from None
    if not raw.strip():
        raise CorruptFileError(f"{path}: corrupt {what} (empty file)")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CorruptFileError(f"{path}: corrupt {what} (not UTF-8: {exc.reason} at byte "
                               f"{exc.start})") from None
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"{path}: corrupt {what} (not JSON, truncated or damaged: "
                               f"{exc.msg} at line {exc.lineno} column {exc.colno})") from None
