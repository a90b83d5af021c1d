"""Where the CLI writes: results to stdout, progress and errors to stderr."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

#: Piped output (logs, CI, `ray job logs`) gets 160 columns instead of rich's 80, so tables keep
#: whole method names; a terminal or $COLUMNS decides otherwise.
_PIPED_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160

out = Console(soft_wrap=True, width=_PIPED_WIDTH)
err = Console(stderr=True, soft_wrap=True)


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr; yields ``advance(n)``."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


@contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner on stderr for work without a known length."""
    with err.status(message):
        yield
    err.print(f"[green]done[/green] {message}")
