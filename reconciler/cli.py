"""The command line: parse options, call one core function, render, map errors to exits.

Kept thin and cheap to import: click only. Everything else is imported inside the
command that needs it, so `--help`, `validate` and `schema` never import boto3.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler import __version__

F = TypeVar("F", bound=Callable[..., Any])

_verbose = [0]  # read by main() when an unexpected exception escapes


def _set_verbose(ctx: click.Context, param: click.Parameter, value: int) -> int:
    _verbose[0] = max(_verbose[0], value)
    return value


def _stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(f: F) -> F:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


specs_dir_argument = click.argument(
    "specs_dir", required=False, default="specs", type=click.Path(path_type=str)
)
output_options = _stack(
    click.option(
        "-v",
        "--verbose",
        count=True,
        callback=_set_verbose,
        expose_value=False,
        is_eager=True,
        help="More detail; tracebacks on unexpected errors.",
    ),
    click.option("-q", "--quiet", is_flag=True, help="No progress on stderr."),
    click.option("--no-color", is_flag=True, help="No colour (NO_COLOR works too)."),
)
spec_options = _stack(
    specs_dir_argument,
    click.option("--allow-empty", is_flag=True, help="Accept a specs folder with no spec."),
)
aws_options = _stack(
    click.option("--region", help="Default region for specs that name none."),
    click.option("--profile", help="AWS profile from your AWS config."),
    click.option("--endpoint-url", help="WorkSpaces endpoint (AWS_ENDPOINT_URL works too)."),
    click.option(
        "--target",
        "targets",
        multiple=True,
        metavar="NAME",
        help="Limit the run to the spec of this name (repeatable).",
    ),
    click.option(
        "--api-rate",
        type=click.FloatRange(min=0),
        default=2.0,
        show_default=True,
        help="WorkSpaces calls per second per region; 0 turns pacing off.",
    ),
    click.option(
        "--concurrency",
        type=click.IntRange(min=1),
        default=4,
        show_default=True,
        help="AWS calls in flight at once per region.",
    ),
    click.option(
        "--image-quota",
        type=click.IntRange(min=1),
        default=40,
        show_default=True,
        help="Images allowed per region (raise it if AWS raised yours).",
    ),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconciler")
def cli() -> None:
    """Declarative Amazon WorkSpaces images: validate, plan, apply and drift-check specs.

    Exit codes follow Terraform: 0 success, 1 error, 2 changes or drift (where asked).
    """


@cli.command()
@spec_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "github", "json"]),
    default="text",
    show_default=True,
)
@output_options
def validate(specs_dir: str, allow_empty: bool, fmt: str, quiet: bool, no_color: bool) -> int:
    """Check the specs offline: no AWS access, credentials or region needed."""
    from reconciler.errors import SpecError
    from reconciler.render.problems import render_problems
    from reconciler.specs import load_specs

    try:
        spec_set = load_specs(Path(specs_dir), allow_empty=allow_empty, shown_root=specs_dir)
    except SpecError as err:
        render_problems(err.problems, fmt, sys.stdout if fmt != "text" else sys.stderr)
        if fmt == "text":
            click.echo(str(err), err=True)
        return 1
    if fmt == "json":
        click.echo("[]")
    elif fmt == "text" and not quiet:
        files = len({s.file for s in spec_set.specs})
        click.echo(f"Success! {len(spec_set.specs)} specs in {files} files are valid.")
    return 0


@cli.command()
def schema() -> int:
    """Print the JSON Schema (draft 2020-12) of the spec format."""
    from reconciler.specs import json_schema

    click.echo(json.dumps(json_schema(), indent=2))
    return 0


def main() -> None:
    """Entry point: run the command and map every outcome to an exit code, in one place."""
    from reconciler.errors import ReconcilerError

    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        code = 1
    except click.ClickException as err:
        err.show()
        code = err.exit_code
    except ReconcilerError as err:
        click.echo(f"Error: {err}", err=True)
        code = err.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        code = 130
    except Exception as err:  # the last line of defence: no traceback without -v
        if _verbose[0]:
            raise
        click.echo(f"Error: unexpected {type(err).__name__}: {err}", err=True)
        click.echo("  hint: run again with -v for the traceback, and report it", err=True)
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


def _no_color(flag: bool) -> bool:
    return flag or "NO_COLOR" in os.environ
