"""Entry point of the ``tailormind`` console script.

Errors the user can fix (:class:`~tailormind.errors.TailorMindError`) print one line,
``error: ...``, and exit non-zero; there is no traceback for them.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.markup import escape

from tailormind import __version__
from tailormind.cli import bench, cf, config_cmd, data, models_cmd, profile
from tailormind.cli.console import err
from tailormind.cli.demo import demo
from tailormind.cli.generate import gallery, generate
from tailormind.cli.serve_cmd import serve
from tailormind.config import load_config
from tailormind.errors import TailorMindError

try:  # typer >= 0.20 vendors click as typer._click: its exceptions are not click's
    from typer import exceptions as _typer_exc
    from typer._click import exceptions as _vendored

    _CLICK_EXIT = (click.exceptions.Exit, _typer_exc.Exit)
    _CLICK_ERROR = (click.ClickException, _vendored.ClickException)
    _CLICK_ABORT = (click.exceptions.Abort, _typer_exc.Abort)
except ImportError:  # pragma: no cover - older typer uses click itself
    _CLICK_EXIT, _CLICK_ERROR, _CLICK_ABORT = (click.exceptions.Exit, click.ClickException,
                                               click.exceptions.Abort)

# torch_geometric imports still call torch.jit.script; the warning is noise for CLI users.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)

app = typer.Typer(
    name="tailormind",
    help="TailorMind: personalized multimodal content generation from interaction logs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data.app, name="data")
app.add_typer(cf.app, name="cf")
app.add_typer(config_cmd.app, name="config")
app.add_typer(models_cmd.app, name="models")
app.add_typer(profile.app, name="profile")
app.add_typer(bench.app, name="bench")
app.command("demo")(demo)
app.command("generate")(generate)
app.command("gallery")(gallery)
app.command("serve")(serve)


def _version(value: bool) -> None:
    if value:
        print(f"tailormind {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", envvar="TAILORMIND_CONFIG", help="YAML config file."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Load the effective config once for every sub-command."""
    ctx.obj = {"settings": load_config(config)}


def run(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    try:
        result = app(args=argv, prog_name="tailormind", standalone_mode=False)
    except TailorMindError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        return exc.exit_code
    except _CLICK_EXIT as exc:
        return exc.exit_code
    except _CLICK_ERROR as exc:
        exc.show()
        return exc.exit_code
    except _CLICK_ABORT:
        err.print("aborted")
        return 130
    return result if isinstance(result, int) else 0


def main() -> None:
    sys.exit(run())
