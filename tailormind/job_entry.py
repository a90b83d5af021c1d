"""The shared shape of the Ray Data job entrypoints in ``jobs/``: arguments, Ray, exit codes.

A job prints progress lines while it runs and one JSON report at the end; an error the user can
fix prints ``error: ...`` on stderr and exits with the error's code (2), without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from tailormind.errors import TailorMindError


def job_parser(description: str) -> argparse.ArgumentParser:
    """--workspace (path or URI) and --config (else ``$TAILORMIND_CONFIG``, else defaults)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--workspace", required=True,
                        help="a path, a file:// URI or an object-store URI (s3://, gs://...)")
    parser.add_argument("--config", default=None,
                        help="TailorMind YAML config (default: $TAILORMIND_CONFIG, else defaults)")
    return parser


def data_job_parser(description: str, unit: str, *, limit: bool = True) -> argparse.ArgumentParser:
    """:func:`job_parser` + --workers, --cpus-per-worker, [--limit], --force."""
    parser = job_parser(description)
    parser.add_argument("--workers", type=int, default=1, help="Ray Data actors")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0)
    if limit:
        parser.add_argument("--limit", type=int, default=None, help=f"at most N more {unit}")
    parser.add_argument("--force", action="store_true", help=f"redo every chosen {unit[:-1]}")
    return parser


def check_inputs(args: argparse.Namespace) -> None:
    """What can fail before Ray starts: the config loads, a local ``--workspace`` is a workspace."""
    from tailormind.config import load_config
    from tailormind.data.workspace import Workspace
    from tailormind.data.workspace_location import is_in_place, local_path

    load_config(getattr(args, "config", None))
    if is_in_place(args.workspace):
        Workspace.open(local_path(args.workspace))


def run_job(body: Callable[[], dict[str, Any]], args: argparse.Namespace | None = None) -> int:
    """Check ``args`` (:func:`check_inputs`), connect to (or start) Ray, run ``body``, print its
    JSON report; map errors to exit codes."""
    try:
        if args is not None:
            check_inputs(args)
        import ray

        if not ray.is_initialized():
            ray.init(log_to_driver=False)
        result = body()
    except TailorMindError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(result, indent=2, default=str))
    return 0
