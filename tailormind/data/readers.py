"""Read CSV / TSV / JSONL / Parquet files into string columns that remember their source rows.

Every problem becomes a :class:`~tailormind.errors.DataError` naming the file, the line (text
formats; the header is line 1) or row (Parquet, 1-based) and the column.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from tailormind.errors import DataError

FORMATS = ("csv", "tsv", "jsonl", "parquet")


#: Suffixes read as delimited text whose separator is not implied: comma, unless the header line
#: has a tab and no comma (HetRec ``.dat``, RecBole ``.inter``); :func:`read_file` sniffs them.
AMBIGUOUS_SUFFIXES = (".txt", ".dat", ".inter", ".item", ".user", "")


def detect_format(path: Path) -> str:
    """File format from the suffix (``.csv .tsv .txt .dat .jsonl .json .parquet .pq``)."""
    suffix = path.suffix.lower()
    if suffix == ".csv" or suffix in AMBIGUOUS_SUFFIXES:
        return "csv"
    if suffix == ".tsv":
        return "tsv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise DataError(f"unknown file type {suffix!r}; use one of {', '.join(FORMATS)}", file=path)


@dataclass
class RawTable:
    """A file read as rows of Python values, with where each row came from."""

    path: Path
    frame: pd.DataFrame
    unit: str  # "line" or "row"
    row_numbers: list[int]

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    def error(self, index: int | None, column: str | None, message: str) -> DataError:
        """A DataError for positional row ``index`` (None: the whole file)."""
        row = None if index is None else self.row_numbers[index]
        return DataError(message, file=self.path, row=row, column=column, unit=self.unit)

    def require(self, column: str, role: str | None = None) -> list[Any]:
        """Values of ``column``; a clear error when the file lacks it."""
        if column not in self.frame.columns:
            what = f" ({role})" if role else ""
            raise DataError(
                f"missing column '{column}'{what}; the file has: {', '.join(self.columns)}",
                file=self.path,
                column=column,
            )
        return self.frame[column].tolist()

    def optional(self, column: str | None) -> list[Any] | None:
        if column is None:
            return None
        return self.require(column)

    def strings(self, column: str, role: str | None = None, *, allow_empty: bool = False) -> list[str]:
        """Non-empty id-like strings (ints written without a trailing ``.0``)."""
        out = []
        for i, value in enumerate(self.require(column, role)):
            text = to_text(value)
            if not text and not allow_empty:
                raise self.error(i, column, "empty value")
            out.append(text)
        return out


def to_text(value: Any) -> str:
    """Render a cell as text: ``None``/NaN -> ``""``, ``3.0`` -> ``"3"``, strings stripped."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="strict")
    return str(value).strip()


def _decode(path: Path, raw: bytes, encoding: str, sep: str | None, hint: str = "pass --encoding") -> str:
    """``raw`` as text; an undecodable byte is an error naming its line (and column, by ``sep``)."""
    try:
        return raw.decode(encoding)
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}", file=path) from None
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw[:exc.start].count(b"\n") + 1
        column = None
        if sep:
            header = raw.split(b"\n", 1)[0].decode(encoding, errors="replace").rstrip("\r")
            names = header.split(sep)
            index = raw[line_start:exc.start].count(sep.encode())
            if line > 1 and index < len(names):
                column = names[index]
        raise DataError(
            f"byte 0x{raw[exc.start]:02x} at offset {exc.start} cannot be decoded as {encoding} "
            f"({hint})",
            file=path,
            row=line,
            column=column,
            unit="line",
        ) from None


def read_file(
    path: str | Path,
    *,
    fmt: str | None = None,
    sep: str | None = None,
    encoding: str = "utf-8",
    header: bool = True,
    names: Sequence[str] | None = None,
    encoding_hint: str = "pass --encoding",
) -> RawTable:
    """Read one file. Delimited files are read as strings (no type guessing, no NA guessing).

    ``fmt`` (one of :data:`FORMATS`) defaults to the suffix's; ``sep`` to a tab for ``tsv`` and a
    comma for ``csv``, except that a file of an :data:`AMBIGUOUS_SUFFIXES` suffix read without
    ``fmt`` or ``sep`` is tab-separated when its first line has a tab and no comma.
    ``encoding_hint`` ends the message of an undecodable byte (how to set the encoding).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file does not exist", file=path)
    sniff = fmt is None and sep is None and path.suffix.lower() in AMBIGUOUS_SUFFIXES
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}", file=path)
    if fmt == "parquet":
        return _read_parquet(path)
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError("file is empty", file=path)
    if fmt == "jsonl":
        return _read_jsonl(path, _decode(path, raw, encoding, None, encoding_hint))
    if sniff:
        first_line = raw.split(b"\n", 1)[0]
        if b"\t" in first_line and b"," not in first_line:
            fmt = "tsv"
    sep = sep if sep is not None else ("\t" if fmt == "tsv" else ",")
    text = _decode(path, raw, encoding, sep, encoding_hint)
    frame = _parse_delimited(path, text, sep, header, names)
    if header:
        frame.columns = _header_names(path, text, sep, frame)
    first = 2 if header else 1
    return RawTable(path, frame, "line", list(range(first, first + len(frame))))


def _parse_delimited(path: Path, text: str, sep: str, header: bool,
                     names: Sequence[str] | None) -> pd.DataFrame:
    """``text`` as a frame of strings (blank lines skipped); :class:`DataError` when it cannot
    be parsed or has no rows."""
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            header=0 if header else None,
            names=list(names) if names else None,
            engine="python" if len(sep) > 1 else "c",
            skip_blank_lines=True,
        )
    except pd.errors.EmptyDataError:
        raise DataError("file is empty", file=path) from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"cannot parse as delimited text with sep={sep!r}: {exc}", file=path) from None
    if frame.empty:
        raise DataError("file has a header but no rows", file=path)
    return frame


def _header_names(path: Path, text: str, sep: str, frame: pd.DataFrame) -> list[str]:
    """The frame's column names stripped (and without a BOM); :class:`DataError` for a name
    repeated in the header line (pandas would rename it ``a.1``)."""
    first_line = text.lstrip("\ufeff").splitlines()[0]
    names_read = [n.strip() for n in next(csv.reader([first_line], delimiter=sep))] if len(sep) == 1 else []
    duplicated = sorted({n for n in names_read if names_read.count(n) > 1})
    if duplicated:
        raise DataError(f"duplicate header name(s) {duplicated}", file=path, row=1, unit="line")
    return [str(c).strip().lstrip("\ufeff") for c in frame.columns]


def _read_jsonl(path: Path, text: str) -> RawTable:
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON ({exc.msg})", file=path, row=number, unit="line") from None
        if not isinstance(record, dict):
            raise DataError("each line must be a JSON object", file=path, row=number, unit="line")
        records.append(record)
        lines.append(number)
    if not records:
        raise DataError("file is empty", file=path)
    frame = pd.DataFrame.from_records(records).astype(object)
    frame = frame.where(frame.notna(), None)
    return RawTable(path, frame, "line", lines)


def _read_parquet(path: Path) -> RawTable:
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise DataError(f"not a readable Parquet file ({exc})", file=path) from None
    if table.num_rows == 0:
        raise DataError("file has no rows", file=path)
    frame = pd.DataFrame({name: table.column(name).to_pylist() for name in table.column_names})
    return RawTable(path, frame.astype(object), "row", list(range(1, table.num_rows + 1)))
