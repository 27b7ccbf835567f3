"""The command line: parse options, call one core function, render, map errors to exits.

Kept thin and cheap to import: click only. Everything else is imported inside the
command that needs it, so `--help`, `validate` and `schema` never import boto3.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from reconciler import __version__

if TYPE_CHECKING:  # types only: the modules themselves are imported where needed
    from reconciler.apply import Applied, AppliedItem
    from reconciler.plan import Plan
    from reconciler.run import PlanOptions

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
        # At the service's pace the bucket, not the pool, sets the speed; without pacing
        # (--api-rate 0) a wider pool hides per-call latency (see docs/performance.md).
        default=16,
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


@cli.result_callback()
def _exit_with(code: int | None, **_: Any) -> None:
    # Commands return their exit code; this makes it the process's, under click's
    # standalone mode (tests' CliRunner) as under main().
    click.get_current_context().exit(code or 0)


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


class _Run:
    """What plan, apply and drift share: options in; clients, progress and output set up."""

    def __init__(self, specs_dir: str, kw: dict[str, Any]) -> None:
        from reconciler.aws import AwsSettings, Clients
        from reconciler.progress import ProgressLine
        from reconciler.run import PlanOptions

        self.options = PlanOptions(
            specs_dir=specs_dir,
            targets=tuple(kw.pop("targets")),
            allow_empty=kw.pop("allow_empty"),
            image_quota=kw.pop("image_quota"),
        )
        self.color = sys.stdout.isatty() and not _no_color(kw.pop("no_color"))
        settings = AwsSettings(
            region=kw.pop("region"),
            profile=kw.pop("profile"),
            endpoint_url=kw.pop("endpoint_url"),
            api_rate=kw.pop("api_rate"),
            concurrency=kw.pop("concurrency"),
        )
        self.progress = ProgressLine(
            sys.stderr, live=sys.stderr.isatty(), enabled=not kw.pop("quiet")
        )
        self.clients = Clients(settings)

    def plan(self, options: PlanOptions | None = None) -> Plan:
        from reconciler.run import build_plan

        try:
            plan, _ = build_plan(options or self.options, self.clients, self.progress)
        finally:
            self.progress.close()
        return plan

    def close(self) -> None:
        self.clients.close()


def _plan_and_emit(specs_dir: str, kw: dict[str, Any], fmt: str, kind: str) -> Plan:
    """Plan (reads only) and render it: all that `plan` and `drift` do before exiting."""
    run = _Run(specs_dir, kw)
    try:
        result = run.plan()
    finally:
        run.close()
    _emit(result, fmt, run.color, kind, run.options.specs_dir)
    return result


def _emit(document: Plan | Applied, fmt: str, color: bool, kind: str, root: str) -> None:
    """Render to stdout; in GitHub Actions also the job summary and error annotations."""
    from reconciler.apply import Applied
    from reconciler.render import json as render_json
    from reconciler.render import text
    from reconciler.render.github import annotate_items, append_step_summary
    from reconciler.render.markdown import markdown

    if fmt == "json":
        sys.stdout.write(render_json.dumps(document))
    elif fmt == "markdown":
        sys.stdout.write(markdown(document, kind=kind))
    elif isinstance(document, Applied):
        text.render_applied(document, sys.stdout, color=color)
    else:
        text.render_plan(document, sys.stdout, color=color, verbose=_verbose[0] > 0)
        if kind == "drift":
            text.render_health(document, sys.stdout, color=color)
    append_step_summary(lambda: markdown(document, kind=kind))
    annotate_items(document, sys.stderr, root=root)


plan_formats = click.Choice(["text", "json", "markdown"])
format_option = click.option(
    "--format",
    "fmt",
    type=plan_formats,
    default="text",
    show_default=True,
    help="markdown: a pull-request comment (also appended to GITHUB_STEP_SUMMARY in Actions).",
)


@cli.command()
@spec_options
@aws_options
@format_option
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False),
    help="Save the plan, for `apply --plan-file`.",
)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when changes are pending.")
@output_options
def plan(specs_dir: str, fmt: str, out_file: str | None, detailed_exitcode: bool, **kw: Any) -> int:
    """Show what apply would do. Changes nothing."""
    result = _plan_and_emit(specs_dir, kw, fmt, "plan")
    if out_file:
        from reconciler.planfile import save_plan

        save_plan(result, Path(out_file))
        click.echo(
            f"Saved the plan to {out_file}; apply it: reconciler apply --plan-file {out_file}",
            err=True,
        )
    if result.has_errors:
        return 1
    return 2 if detailed_exitcode and result.has_changes else 0


@cli.command()
@spec_options
@aws_options
@click.option("--auto-approve", is_flag=True, help="Apply without asking.")
@click.option(
    "--plan-file",
    type=click.Path(dir_okay=False, exists=False),
    help="Apply this saved plan, as reviewed; refused if stale.",
)
@format_option
@click.option("--prune", is_flag=True, help="Delete owned images that no spec declares.")
@click.option(
    "--replace-failed", is_flag=True, help="Delete owned images in ERROR and capture them again."
)
@click.option(
    "--wait", is_flag=True, help="Wait for captures to end; run deferred creates in turn."
)
@click.option(
    "--wait-timeout",
    type=click.FloatRange(min=0),
    default=3600.0,
    show_default=True,
    metavar="SECONDS",
    help="With --wait: give up (exit 1) after this long.",
)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when work is left for a later run.")
@output_options
def apply(
    specs_dir: str,
    auto_approve: bool,
    plan_file: str | None,
    fmt: str,
    prune: bool,
    replace_failed: bool,
    wait: bool,
    wait_timeout: float,
    detailed_exitcode: bool,
    **kw: Any,
) -> int:
    """Create missing images and reconcile tags, as the plan shows."""
    from reconciler.apply import ApplyOptions, apply_plan, has_work

    if prune and kw["targets"]:
        raise click.UsageError("--prune judges every spec; it can't be combined with --target")
    quiet = kw["quiet"]
    run = _Run(specs_dir, kw)
    run.options = dataclasses.replace(run.options, recapture_failed=replace_failed)
    try:
        if plan_file:
            result, converged = _saved_plan(run, Path(plan_file))
        else:
            result, converged = run.plan(), frozenset()
        options = ApplyOptions(converged, prune=prune, replace_failed=replace_failed)
        asks = not plan_file and not auto_approve and has_work(result, options)
        if not plan_file and (fmt == "text" or asks):
            # The plan first, as the thing to confirm: on stdout with the text format, else
            # on stderr so that stdout keeps one JSON or Markdown document.
            from reconciler.render.text import render_plan

            preview = sys.stdout if fmt == "text" else sys.stderr
            render_plan(
                result, preview, color=run.color, prune=prune, replace_failed=replace_failed
            )
        if asks and not _confirm():
            return 1
        with _stop_on_signals(run.clients.stop):
            applied = apply_plan(result, run.clients, options)
            pending: tuple[AppliedItem, ...] = ()
            if wait:
                applied, pending = _wait(applied, run, wait_timeout, quiet)
    finally:
        run.close()
    if fmt == "text":
        click.echo("")
    _emit(applied, fmt, run.color, "apply", run.options.specs_dir)
    if applied.interrupted:
        return 130
    if pending:
        names = ", ".join(f"{i.name} ({i.region}, {i.state or i.result.value})" for i in pending)
        click.echo(f"Error: --wait-timeout ran out with images still pending: {names}", err=True)
        return 1
    if applied.failed:
        return 1
    return 2 if detailed_exitcode and applied.work_left else 0


def _wait(
    applied: Applied, run: _Run, timeout: float, quiet: bool
) -> tuple[Applied, tuple[AppliedItem, ...]]:
    from reconciler.progress import WaitProgress
    from reconciler.wait import wait_for_captures

    progress = WaitProgress(sys.stderr, live=sys.stderr.isatty(), enabled=not quiet)
    try:
        outcome = wait_for_captures(applied, run.clients, timeout=timeout, report=progress)
    finally:
        progress.close()
    return outcome.applied, outcome.timed_out


def _saved_plan(run: _Run, path: Path) -> tuple[Plan, frozenset[tuple[str, str]]]:
    """The saved plan checked against a fresh one: the reviewed plan is the approval."""
    from reconciler.planfile import load_plan, settle

    saved = load_plan(path)
    options = dataclasses.replace(run.options, targets=saved.targets or run.options.targets)
    fresh = run.plan(options)
    plan, converged = settle(saved, fresh)
    click.echo(
        f"Applying the saved plan {path} (checked against the live state: current).", err=True
    )
    return plan, converged


@cli.command()
@spec_options
@aws_options
@format_option
@output_options
def drift(specs_dir: str, fmt: str, **kw: Any) -> int:
    """Exit 2 when the account has drifted from the specs (for a schedule)."""
    result = _plan_and_emit(specs_dir, kw, fmt, "drift")
    # Conflicts and blocked items are drift too ("any item other than no-op"); errors that
    # stop the run (specs, credentials, AWS) exit 1 from main().
    return 2 if result.drifted else 0


def _confirm() -> bool:
    if not sys.stdin.isatty():
        click.echo(
            "Error: apply needs confirmation, and stdin is not a terminal; pass --auto-approve "
            "(or --plan-file with a reviewed plan)",
            err=True,
        )
        return False
    click.echo("\nDo you want to apply these changes? Only 'yes' will be accepted.", err=True)
    answer = click.prompt("  Enter a value", default="", show_default=False, err=True)
    if answer.strip() != "yes":
        click.echo("Apply cancelled.", err=True)
        return False
    return True


@contextmanager
def _stop_on_signals(stop: Any) -> Iterator[None]:
    """SIGINT/SIGTERM: start no new call, let the ones in flight finish, then report."""
    import signal

    def handler(signum: int, frame: Any) -> None:
        if not stop.is_set():
            click.echo("\nInterrupted: finishing calls in flight, starting no new ones.", err=True)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@cli.command()
def demo() -> int:
    """Run plan, apply and drift against an embedded local endpoint (no AWS account)."""
    from reconciler.demo import run_demo

    return run_demo()


def main() -> None:
    """Entry point: run the command and map every outcome to an exit code, in one place."""
    from reconciler.errors import ReconcilerError, SpecError

    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        code = 1
    except click.ClickException as err:
        err.show()
        code = err.exit_code
    except SpecError as err:
        from reconciler.render.github import annotate_problems
        from reconciler.render.problems import render_problems

        render_problems(err.problems, "text", sys.stderr)
        annotate_problems(err.problems, sys.stderr)
        click.echo(f"Error: {err}", err=True)
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
