"""The command line: parse options, call one core function, render, map errors to exits.

Kept thin and cheap to import: click only. Everything else is imported inside the
command that needs it, so `--help`, `validate` and `schema` never import boto3.

Exit codes keep their meaning (Terraform's convention): 0 success, 1 error (usage errors
included: click's own 2 would read as "changes" or "drift" to a workflow), 2 changes or
drift where asked, 130 interrupted.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from reconciler import __version__

if TYPE_CHECKING:  # types only: the modules themselves are imported where needed
    from reconciler.aws import AwsSettings, Clients
    from reconciler.errors import ReconcilerError
    from reconciler.plan import Key, Plan, Replan
    from reconciler.progress import ProgressLine
    from reconciler.results import Applied, AppliedItem
    from reconciler.run import PlanOptions
    from reconciler.wait import WaitOutcome

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

_verbose = [0]  # read by main() when an unexpected exception escapes
_interrupted = [False]  # set by SIGINT/SIGTERM; main() then exits 130, whatever the outcome


def _set_verbose(ctx: click.Context, param: click.Parameter, value: int) -> int:
    _verbose[0] = max(_verbose[0], value)
    return value


class _Group(click.Group):
    """Usage errors exit 1, not click's 2: 2 means changes or drift to a workflow."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        with _usage_exits_1():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        with _usage_exits_1():
            return super().invoke(ctx)


@contextmanager
def _usage_exits_1() -> Iterator[None]:
    try:
        yield
    except click.UsageError as err:
        err.exit_code = 1  # type: ignore[misc]  # click's class default is 2
        raise


def _stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(f: F) -> F:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


def _check_label(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from reconciler.render.markdown import check_label

    try:
        return check_label(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from err


@dataclass(frozen=True)
class Output:
    """Where and how a command's document goes: stdout in one format, and optional files."""

    fmt: str = "text"
    kind: str = "plan"  # plan, apply or drift: the Markdown heading and hidden marker
    label: str | None = None
    color: bool = False
    quiet: bool = False
    markdown_file: str | None = None
    json_file: str | None = None


specs_dir_argument = click.argument(
    "specs_dir", required=False, default="specs", type=click.Path(path_type=str)
)
verbose_option = click.option(
    "-v",
    "--verbose",
    count=True,
    callback=_set_verbose,
    expose_value=False,
    is_eager=True,
    help="More detail; tracebacks on unexpected errors.",
)
spec_options = _stack(
    specs_dir_argument,
    click.option("--allow-empty", is_flag=True, help="Accept a specs folder with no spec."),
)
_run_option_list = [
    click.option("--region", help="Default region for specs that name none."),
    click.option("--profile", help="AWS profile from your AWS config."),
    click.option(
        "--endpoint-url", help="Endpoint for every AWS API called (AWS_ENDPOINT_URL works too)."
    ),
    click.option(
        "--target",
        "targets",
        multiple=True,
        metavar="NAME",
        help="Limit the run to the spec of this name (repeatable).",
    ),
    click.option(
        "--account",
        "accounts",
        multiple=True,
        metavar="NAME",
        help="Limit the run to this account of the specs' accounts: map (repeatable).",
    ),
    click.option(
        "--api-rate",
        type=click.FloatRange(min=0),
        default=2.0,
        show_default=True,
        help="WorkSpaces calls per second per region; 0 turns pacing off.",
    ),
    click.option(
        "--tagging-rate",
        type=click.FloatRange(min=0),
        default=2.0,
        show_default=True,
        help="tag:GetResources calls per second per region (its own budget); 0 turns pacing off.",
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
    click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json", "markdown"]),
        default="text",
        show_default=True,
        help="markdown: a pull-request comment (also appended to GITHUB_STEP_SUMMARY in Actions).",
    ),
    click.option(
        "--label",
        callback=_check_label,
        metavar="TEXT",
        help="Name this run (e.g. account/region) in the Markdown heading and comment marker.",
    ),
    click.option(
        "--markdown-file",
        type=click.Path(dir_okay=False),
        metavar="FILE",
        help="Also write the Markdown document to FILE (the error comment if the run fails).",
    ),
    click.option(
        "--json-file",
        type=click.Path(dir_okay=False),
        metavar="FILE",
        help="Also write the JSON document to FILE (the error document if the run fails).",
    ),
    verbose_option,
    click.option("-q", "--quiet", is_flag=True, help="No progress on stderr."),
    click.option("--no-color", is_flag=True, help="No colour (a non-empty NO_COLOR too)."),
]


def run_options(kind: str) -> Callable[[F], F]:
    """The options of plan, apply and drift, handed to the command as three values:
    `options` (PlanOptions), `aws` (AwsSettings) and `out` (Output)."""

    def decorate(f: F) -> F:
        @functools.wraps(f)
        def command(
            specs_dir: str,
            allow_empty: bool,
            targets: tuple[str, ...],
            accounts: tuple[str, ...],
            image_quota: int,
            region: str | None,
            profile: str | None,
            endpoint_url: str | None,
            api_rate: float,
            tagging_rate: float,
            concurrency: int,
            fmt: str,
            label: str | None,
            markdown_file: str | None,
            json_file: str | None,
            quiet: bool,
            no_color: bool,
            **rest: Any,
        ) -> Any:
            from reconciler.aws import AwsSettings
            from reconciler.run import PlanOptions

            options = PlanOptions(
                specs_dir=specs_dir,
                targets=targets,
                allow_empty=allow_empty,
                image_quota=image_quota,
                accounts=accounts,
            )
            aws = AwsSettings(
                region=region,
                profile=profile,
                endpoint_url=endpoint_url,
                api_rate=api_rate,
                concurrency=concurrency,
                tagging_rate=tagging_rate,
            )
            color = sys.stdout.isatty() and not _no_color(no_color)
            out = Output(fmt, kind, label, color, quiet, markdown_file, json_file)
            with _errors_reported(out):
                return f(options=options, aws=aws, out=out, **rest)

        return _stack(spec_options, *_run_option_list)(command)  # type: ignore[return-value]

    return decorate


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconciler")
def cli() -> None:
    """Declarative Amazon WorkSpaces images: validate, plan, apply and drift-check specs.

    Exit codes follow Terraform: 0 success, 1 error, 2 changes or drift (where asked),
    130 interrupted.
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
    type=click.Choice(["text", "github", "json", "sarif"]),
    default="text",
    show_default=True,
    help="sarif: SARIF 2.1.0 for code scanning.",
)
@click.option(
    "--sarif-file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Also write SARIF 2.1.0 to FILE, valid specs or not (for code scanning).",
)
@verbose_option
@click.option("-q", "--quiet", is_flag=True, help="Only problems, no success line.")
@click.option("--no-color", is_flag=True, help="No colour (a non-empty NO_COLOR too).")
def validate(
    specs_dir: str,
    allow_empty: bool,
    fmt: str,
    sarif_file: str | None,
    quiet: bool,
    no_color: bool,
) -> int:
    """Check the specs offline: no AWS access, credentials or region needed."""
    from reconciler.errors import SpecError
    from reconciler.render.problems import render_problems, sarif_text
    from reconciler.specs import check_specs

    report = check_specs(Path(specs_dir), allow_empty=allow_empty, shown_root=specs_dir)
    # Text is read by a person: every line on stderr. The other formats are one result on
    # stdout (warnings on stderr too, so that a CI log shows them).
    out = sys.stderr if fmt == "text" else sys.stdout
    render_problems(report.problems, fmt, out, warnings=report.warnings, diagnostics=sys.stderr)
    if sarif_file:
        # Valid specs too: an upload with no result is what closes the alerts of fixed lines.
        _write_file(
            sarif_file, lambda: sarif_text(report.problems, report.warnings), "--sarif-file"
        )
    if report.spec_set is None:
        if fmt == "text":
            click.echo(str(SpecError(report.problems)), err=True)
        return 1
    if fmt == "text" and not quiet:
        spec_set = report.spec_set
        files = {s.file for s in spec_set.specs} | {b.file for b in spec_set.bundles}
        count = len(spec_set.specs) + len(spec_set.bundles)
        click.echo(f"Success! {count} specs in {len(files)} files are valid.")
    return 0


@cli.command()
def schema() -> int:
    """Print the JSON Schema (draft 2020-12) of the spec format."""
    from reconciler.specs import json_schema

    click.echo(json.dumps(json_schema(), indent=2))
    return 0


class _Run:
    """What plan, apply and drift share: clients, progress and the plan step."""

    def __init__(self, options: PlanOptions, aws: AwsSettings, out: Output) -> None:
        from reconciler.aws import Clients
        from reconciler.progress import ProgressLine

        self.options = options
        self.out = out
        self.progress: ProgressLine = ProgressLine(
            sys.stderr, live=sys.stderr.isatty(), enabled=not out.quiet
        )
        # Notes from the AWS layer (retries, regions skipped) go to stderr as they happen.
        self.clients: Clients = Clients(aws, notify=lambda line: self.progress.note(line))

    def plan(self, options: PlanOptions | None = None) -> tuple[Plan, Replan]:
        from reconciler.errors import Interrupted
        from reconciler.progress import ProgressLine
        from reconciler.run import build_plan

        try:
            # A plan finished after the signal is still an interrupted run (exit 130).
            planned = self.until_stopped(
                lambda: build_plan(options or self.options, self.clients, self.progress)
            )
            if self.clients.stop.is_set():
                raise Interrupted("interrupted; nothing was changed")
            return planned
        finally:
            self.progress.close()
            # A fresh line for the next phase (apply's progress).
            self.progress = ProgressLine(
                sys.stderr, live=sys.stderr.isatty(), enabled=not self.out.quiet
            )

    def until_stopped(self, work: Callable[[], T], grace: float = 0.0) -> T:
        """work() with SIGINT/SIGTERM stopping it: calls still in flight `grace` seconds
        after the signal are abandoned (aws.until_stopped), and Interrupted is raised."""
        from reconciler.aws import until_stopped

        with _stop_on_signals(self.clients):
            return until_stopped(work, self.clients.stop, grace)

    def close(self) -> None:
        self.clients.close()


def _plan_and_emit(options: PlanOptions, aws: AwsSettings, out: Output) -> Plan:
    """Plan (reads only) and render it: all that `plan` and `drift` do before exiting."""
    run = _Run(options, aws, out)
    try:
        result, _ = run.plan()
    finally:
        run.close()
    _emit(result, out, run.options.specs_dir)
    return result


def _emit(
    document: Plan | Applied, out: Output, root: str, error: ReconcilerError | None = None
) -> None:
    """Render to stdout and the asked-for files; in GitHub Actions also the job summary and
    error annotations. `error`: the run then stopped on it (it goes into the document)."""
    from reconciler.render import json as render_json
    from reconciler.render import text
    from reconciler.render.github import annotate_items, append_step_summary
    from reconciler.results import Applied

    def as_markdown() -> str:
        return _markdown(document, out, error)

    def as_json() -> str:
        return render_json.dumps(document, error=error, drift=out.kind == "drift")

    if out.fmt == "json":
        sys.stdout.write(as_json())
    elif out.fmt == "markdown":
        sys.stdout.write(as_markdown())
    elif isinstance(document, Applied):
        text.render_applied(document, sys.stdout, color=out.color, stopped=error is not None)
    else:
        text.render_plan(document, sys.stdout, color=out.color, verbose=_verbose[0] > 0)
        if out.kind == "drift":
            text.render_health(document, sys.stdout, color=out.color)
    if error is not None:
        error.in_document = True
    _write_files(out, as_markdown, as_json)
    append_step_summary(lambda: _markdown(document, out, error, summary=True))
    annotate_items(document, sys.stderr, root=root)


def _markdown(
    document: Plan | Applied, out: Output, error: ReconcilerError | None, *, summary: bool = False
) -> str:
    """The comment; `summary`: for the job summary, which holds far more than a comment."""
    from reconciler.render.github import current_run
    from reconciler.render.markdown import MAX_CHARS, SUMMARY_MAX_CHARS, markdown

    limit = SUMMARY_MAX_CHARS if summary else MAX_CHARS
    return markdown(
        document, kind=out.kind, label=out.label, run=current_run(), error=error, limit=limit
    )


def _write_files(out: Output, as_markdown: Callable[[], str], as_json: Callable[[], str]) -> None:
    """--markdown-file and --json-file: a file that can't be written is an error, after the
    results went to stdout."""
    for path, render, option in (
        (out.markdown_file, as_markdown, "--markdown-file"),
        (out.json_file, as_json, "--json-file"),
    ):
        if path:
            _write_file(path, render, option)


def _write_file(path: str, render: Callable[[], str], option: str) -> None:
    """A document to the file an option names; one that can't be written is an error."""
    from reconciler.errors import ConfigError

    try:
        Path(path).write_text(render(), encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            f"{option} {path} cannot be written: {err.strerror or err}",
            hint=f"pass {option} a file in a folder that exists and is writable",
        ) from err


@contextmanager
def _errors_reported(out: Output) -> Iterator[None]:
    """A run that stops on an error still says so in the format asked for: the JSON error
    document or the Markdown error comment on stdout and in the asked-for files. main()
    then prints the error on stderr and sets the exit code."""
    from reconciler.errors import ReconcilerError

    try:
        yield
    except ReconcilerError as err:
        if not err.in_document:
            _emit_error(err, out)
        raise


def _emit_error(err: ReconcilerError, out: Output) -> None:
    from reconciler.render.github import append_step_summary, current_run
    from reconciler.render.json import error_document
    from reconciler.render.markdown import SUMMARY_MAX_CHARS, error_markdown

    def as_markdown(limit: int | None = None) -> str:
        extra = {"limit": limit} if limit else {}
        return error_markdown(err, kind=out.kind, label=out.label, run=current_run(), **extra)

    if out.fmt == "json":
        sys.stdout.write(error_document(err))
    elif out.fmt == "markdown":
        sys.stdout.write(as_markdown())
    try:
        _write_files(out, as_markdown, lambda: error_document(err))
    except ReconcilerError as file_err:  # the first error is the one to report
        click.echo(f"Error: {file_err}", err=True)
    append_step_summary(lambda: as_markdown(SUMMARY_MAX_CHARS))


@cli.command()
@run_options("plan")
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False),
    help="Save the plan, for `apply --plan-file`.",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Also plan deleting the owned bundles and images (copies too) that no spec declares; "
    "an image a bundle still uses is kept.",
)
@click.option(
    "--replace-failed",
    is_flag=True,
    help="Also plan deleting owned images and copies in ERROR and making them again.",
)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when changes are pending.")
def plan(
    options: PlanOptions,
    aws: AwsSettings,
    out: Output,
    out_file: str | None,
    prune: bool,
    replace_failed: bool,
    detailed_exitcode: bool,
) -> int:
    """Show what apply would do. Changes nothing."""
    _no_prune_with_target(prune, options)
    options = replace(options, prune=prune, recapture_failed=replace_failed)
    result = _plan_and_emit(options, aws, out)
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


def _no_prune_with_target(prune: bool, options: PlanOptions) -> None:
    if prune and options.targets:
        raise click.UsageError("--prune judges every spec; it can't be combined with --target")


@cli.command()
@run_options("apply")
@click.option("--auto-approve", is_flag=True, help="Apply without asking.")
@click.option(
    "--plan-file",
    type=click.Path(dir_okay=False, exists=False),
    help="Apply this saved plan, as reviewed (its --prune/--replace-failed included).",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Also delete the owned bundles and images (copies too) that no spec declares, "
    "bundles first, an image's sharing revoked before it goes; an image a bundle still uses "
    "is kept.",
)
@click.option(
    "--replace-failed",
    is_flag=True,
    help="Delete owned images and copies in ERROR and make them again.",
)
@click.option(
    "--wait",
    is_flag=True,
    help="Wait for captures and copies to end; run what waited on them in turn (captures of "
    "the same WorkSpace, copies, sharing, bundles).",
)
@click.option(
    "--wait-timeout",
    type=click.FloatRange(min=0),
    default=3600.0,
    show_default=True,
    metavar="SECONDS",
    help="With --wait: give up (exit 1) after this long.",
)
@click.option(
    "--reviewed-digest",
    metavar="sha256:HEX",
    help="Change nothing (exit 1) unless the plan made now has this `plan_digest`: the one "
    "of the plan that was reviewed (its JSON, or its pull request comment).",
)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when work is left for a later run.")
def apply(
    options: PlanOptions,
    aws: AwsSettings,
    out: Output,
    auto_approve: bool,
    plan_file: str | None,
    prune: bool,
    replace_failed: bool,
    wait: bool,
    wait_timeout: float,
    reviewed_digest: str | None,
    detailed_exitcode: bool,
) -> int:
    """Make the account match the specs, as the plan shows.

    Captures images, copies them to other regions, shares them with accounts, creates
    bundles and moves them to new images, and reconciles tags; with --prune, also deletes
    what no spec declares.
    """
    from reconciler.apply import ApplyOptions, apply_changes, apply_deletions
    from reconciler.aws import STEP_GRACE

    _no_prune_with_target(prune, options)
    if plan_file and options.accounts:
        raise click.UsageError(
            "--account can't be combined with --plan-file: the saved plan already says which "
            "accounts it covers; plan again with --account to narrow it"
        )
    if plan_file and options.targets:
        raise click.UsageError(
            "--target can't be combined with --plan-file: the saved plan already says what "
            "it covers; plan again with --target to narrow it"
        )
    _check_reviewed_digest(reviewed_digest, plan_file)
    # An apply that prunes deletes: refused for an account of the map no spec names.
    options = replace(options, prune=prune, recapture_failed=replace_failed, deletes=True)
    run = _Run(options, aws, out)
    try:
        if plan_file:
            result, replan, converged = _saved_plan(run, Path(plan_file))
        else:
            (result, replan), converged = run.plan(), frozenset()
        if reviewed_digest:
            from reconciler.planfile import check_reviewed

            check_reviewed(result, reviewed_digest)
        asks = not plan_file and not auto_approve and result.has_changes
        if not plan_file and (out.fmt == "text" or asks):
            # The plan first, as the thing to confirm: on stdout with the text format, else
            # on stderr so that stdout keeps one JSON or Markdown document.
            from reconciler.render.text import render_plan

            preview = sys.stdout if out.fmt == "text" else sys.stderr
            render_plan(result, preview, color=out.color)
        if asks and not _confirm():
            return 1
        # Each step gets STEP_GRACE after a signal: its calls in flight are abandoned after
        # IN_FLIGHT_GRACE and reported so (apply.by_region), then it returns its results.
        changed = run.until_stopped(
            lambda: apply_changes(
                result,
                run.clients,
                ApplyOptions(converged, replan=replan),
                report=_apply_progress(run.progress, result),
            ),
            STEP_GRACE,
        )
        run.progress.close()
        pending: tuple[AppliedItem, ...] = ()
        if wait:
            changed, pending = _wait(changed, run, wait_timeout, out, replan)
        # Deletions last: bundles moved to their new image first free the old one.
        applied = _interruptible_step(run, lambda: apply_deletions(changed, run.clients), changed)
    finally:
        run.close()
    if out.fmt == "text":
        click.echo("")
    _emit(applied, out, run.options.specs_dir)
    if applied.interrupted:
        _say_abandoned(applied)
        return 130
    if pending:
        names = ", ".join(
            f"{'' if i.kind.value == 'image' else i.kind.value + ' '}{i.name} ({i.region}, "
            f"{i.state or i.result.value})"
            for i in pending
        )
        click.echo(f"Error: --wait-timeout ran out with work still pending: {names}", err=True)
        return 1
    if applied.failed:
        return 1
    return 2 if detailed_exitcode and applied.work_left else 0


def _check_reviewed_digest(digest: str | None, plan_file: str | None) -> None:
    from reconciler.planfile import DIGEST_FORMAT

    if digest is None:
        return
    if plan_file:
        raise click.UsageError(
            "--reviewed-digest can't be combined with --plan-file: a saved plan is held to a "
            "fresh one already, decision by decision"
        )
    if not DIGEST_FORMAT.fullmatch(digest):
        raise click.UsageError(
            f"--reviewed-digest {digest!r} is not a plan digest: give the `plan_digest` of a "
            "plan (sha256: and 64 lowercase hex digits)"
        )


def _interruptible_step(run: _Run, work: Callable[[], Applied], before: Applied) -> Applied:
    """A step of apply after the changes; abandoned by a signal, the results `before` it
    stand, marked interrupted (the summary is printed all the same)."""
    from reconciler.aws import STEP_GRACE
    from reconciler.errors import Interrupted

    try:
        return run.until_stopped(work, STEP_GRACE)
    except Interrupted:
        return before.model_copy(update={"interrupted": True})


def _say_abandoned(applied: Applied) -> None:
    """After an interrupted apply, on stderr: what became of the calls in flight."""
    from reconciler.apply import ABANDONED

    errors = [i.error for i in applied.items] + [u.error for u in applied.unmanaged]
    count = errors.count(ABANDONED)
    if count:
        click.echo(
            f"Interrupted: {count} call{'s' if count > 1 else ''} in flight abandoned, "
            "outcome unknown; run apply again to settle (a create is found by its name, "
            "never made twice).",
            err=True,
        )


def _apply_progress(progress: ProgressLine, plan: Plan) -> Callable[[AppliedItem], None]:
    """A progress line while apply works through hundreds of items (counts per region)."""
    import threading

    lock = threading.Lock()
    totals = {
        r: sum(1 for i in plan.items if i.region == r) for r in {i.region for i in plan.items}
    }
    done = dict.fromkeys(totals, 0)

    def report(item: AppliedItem) -> None:
        with lock:
            done[item.region] += 1
            count = done[item.region]
        progress(item.region, "apply", count, totals[item.region])

    return report


def _wait(
    applied: Applied, run: _Run, timeout: float, out: Output, replan: Replan
) -> tuple[Applied, tuple[AppliedItem, ...]]:
    """--wait; an error while polling still reports what was applied, then the error."""
    from reconciler.aws import STEP_GRACE
    from reconciler.errors import Interrupted, ReconcilerError
    from reconciler.progress import WaitProgress
    from reconciler.run import aws_errors
    from reconciler.wait import wait_for_captures

    progress = WaitProgress(sys.stderr, live=sys.stderr.isatty(), enabled=not out.quiet)

    def wait() -> WaitOutcome:
        with aws_errors():
            return wait_for_captures(
                applied,
                run.clients,
                timeout=timeout,
                report=progress,
                replan=replan,
                done=_waited_item_line(out),
            )

    try:
        outcome = run.until_stopped(wait, STEP_GRACE)
    except Interrupted:
        # Stopped, or abandoned in a poll that hung. What ran while waiting was said on
        # stderr as it ended; the summary shows the results from before the wait.
        progress.close()
        click.echo(
            "Interrupted while waiting (what ran meanwhile is listed above); a call still in "
            "flight was abandoned, its outcome unknown: run apply again to settle it.",
            err=True,
        )
        return applied.model_copy(update={"interrupted": True}), ()
    except ReconcilerError as err:
        progress.close()
        err.message = f"while waiting, after the changes above were made: {err.message}"
        if out.fmt == "text":
            click.echo("")
        _emit(applied, out, run.options.specs_dir, error=err)
        raise
    finally:
        progress.close()
    return outcome.applied, outcome.timed_out


def _waited_item_line(out: Output) -> Callable[[AppliedItem], None]:
    """A line on stderr for each item that waited and has now run (`apply --wait`)."""
    from reconciler.render.escape import terminal_safe as safe
    from reconciler.render.text import named, place
    from reconciler.results import Result

    def line(item: AppliedItem) -> None:
        if out.quiet:
            return
        name = named(item, by_action=item.result is Result.SHARING_UPDATED)
        detail = f": {safe(item.error)}" if item.error else ""
        click.echo(f"  {item.result.value} {name} ({safe(place(item))}){detail}", err=True)

    return line


def _saved_plan(run: _Run, path: Path) -> tuple[Plan, Replan, frozenset[Key]]:
    """The saved plan checked against a fresh one: the reviewed plan is the approval.

    It is applied exactly as recorded: its own --prune/--replace-failed choices; passing
    one it was saved without is refused before any change."""
    from reconciler.apply import reread
    from reconciler.errors import PlanFileError
    from reconciler.planfile import load_plan, settle

    saved = load_plan(path)
    for flag, asked, recorded in (
        ("--prune", run.options.prune, saved.prune),
        ("--replace-failed", run.options.recapture_failed, saved.replace_failed),
    ):
        if asked and not recorded:
            raise PlanFileError(
                f"{flag} was passed, but the saved plan {path} was made without it, so it "
                "shows no such deletion; nothing was changed",
                hint=f"run `reconciler plan {flag} --out FILE`, review it, and apply that file",
            )
    options = replace(
        run.options,
        targets=saved.targets,
        accounts=tuple(a.name for a in saved.accounts),
        prune=saved.prune,
        recapture_failed=saved.replace_failed,
    )
    fresh, replan = run.plan(options)
    plan, converged = settle(saved, fresh, reread(run.clients, replan))
    click.echo(
        f"Applying the saved plan {path} (checked against the live state: current).", err=True
    )
    return plan, replan, converged


@cli.command()
@run_options("drift")
@click.option(
    "--updates-are-drift",
    is_flag=True,
    help="Also exit 2 while AWS has updates for a declared image that no spec makes an "
    "updated image of (`updated_from`).",
)
def drift(options: PlanOptions, aws: AwsSettings, out: Output, updates_are_drift: bool) -> int:
    """Exit 2 when the account has drifted from the specs (for a schedule)."""
    from reconciler.kinds.image import updates_due

    result = _plan_and_emit(options, aws, out)
    # Conflicts and blocked items are drift too ("any item other than no-op"); errors that
    # stop the run (specs, credentials, AWS) exit 1 from main(). AWS's updates are listed
    # (`updates_available`) but are drift only when asked.
    due = updates_are_drift and bool(updates_due(result))
    return 2 if result.drifted or due else 0


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
def _stop_on_signals(clients: Clients) -> Iterator[None]:
    """SIGINT/SIGTERM stop the run: no new call, no retry; the main thread, which only
    waits meanwhile (aws.until_stopped), then abandons the calls still in flight."""
    import signal

    def say() -> None:
        click.echo("\nInterrupted: starting no new calls, abandoning those in flight.", err=True)

    def handler(signum: int, frame: Any) -> None:
        _interrupted[0] = True
        clients.interrupt(say)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@cli.command()
@click.option(
    "--serve",
    is_flag=True,
    help="Instead, serve the endpoint (seeded with the demo's source WorkSpaces) until "
    "Ctrl-C, for your own commands: prints its URL first, then the environment to export.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="With --serve: listen on 127.0.0.1:PORT (default: a free port).",
)
@click.option(
    "--write-specs",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="With --serve: also write the demo's specs to DIR (a new or empty folder).",
)
def demo(serve: bool, port: int | None, write_specs: Path | None) -> int:
    """Run plan, apply and drift against an embedded local endpoint (no AWS account).

    With --serve, serve that endpoint until interrupted (exit 130), for the README's
    worked rollout or commands of your own.
    """
    if not serve and (port is not None or write_specs is not None):
        raise click.UsageError("--port and --write-specs go with --serve")
    from reconciler.demo import run_demo, serve_demo

    return serve_demo(port or 0, write_specs) if serve else run_demo()


# New objects between two runs of the cycle collector (CPython's default: 700). botocore
# makes them by the hundred thousand (every client copies its session's event handlers and
# parses its endpoint rules), and a run over many accounts makes hundreds of clients: at the
# default the collector walked the ever larger heap again and again, 1.2 to 1.5 s of the 6 s
# of CPU a plan of 20 accounts took (issue 18); at this threshold, about 0.2 s. Garbage
# cycles still go, only in larger batches.
GC_THRESHOLD = 100_000


def main() -> None:
    """Entry point: run the command and map every outcome to an exit code, in one place."""
    import signal

    from reconciler.errors import ReconcilerError, SpecError

    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    _interrupted[0] = False
    # Outside a run's calls (_stop_on_signals), SIGTERM ends the command as Ctrl-C does: the
    # default would kill it unreported (exit -15).
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, _raise_interrupt)
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        code = 130
    except click.ClickException as err:
        err.show()
        code = 1
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
    if _interrupted[0] or code == 130:
        # Also when the work happened to end after the signal. Threads may still hang in
        # abandoned calls, and interpreter exit joins the pools' threads (for up to the read
        # timeout): leave at once, the output flushed.
        from contextlib import suppress

        for stream in (sys.stdout, sys.stderr):
            with suppress(OSError, ValueError):  # a closed pipe: nothing more to say
                stream.flush()
        os._exit(130)
    # The process ends here: its last collection would walk every object botocore made (0.5 s
    # of CPU after a plan of 20 accounts) only to free memory the OS takes back anyway.
    gc.freeze()
    sys.exit(code if isinstance(code, int) else 0)


def _raise_interrupt(signum: int, frame: Any) -> None:
    _interrupted[0] = True
    raise KeyboardInterrupt


def _no_color(flag: bool) -> bool:
    # no-color.org: NO_COLOR disables colour when present and not an empty string.
    return flag or bool(os.environ.get("NO_COLOR"))
