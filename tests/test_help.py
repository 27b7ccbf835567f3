"""What `--help` says a command does is what it does: apply copies, shares, bundles and,
with --prune, deletes bundles and images, not only "creates missing images"."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from reconciler.cli import cli


def help_text(*command: str) -> str:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    return re.sub(r"\s+", " ", result.output)


def option_help(command: str, option: str) -> str:
    """The help of one option: from its name to the next option's."""
    text = help_text(command)
    return text.split(f" {option} ", 1)[1].split(" --", 1)[0]


def test_apply_help_names_every_kind_of_change_it_makes() -> None:
    text = help_text("apply")
    for does in ("Captures images", "copies them", "shares them", "creates bundles", "tags"):
        assert does in text, text
    assert "Create missing images" not in text


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_prune_help_names_bundles_and_images(command: str) -> None:
    text = option_help(command, "--prune")
    assert "bundles and images" in text, text
    assert "no spec declares" in text, text
    assert "kept" in text, text  # an image a bundle uses is never deleted


def test_demo_help_offers_serve_and_port() -> None:
    text = help_text("demo")
    assert "--serve" in text
    assert "--port" in text
    assert "--write-specs" in text


def test_the_command_collects_garbage_in_larger_batches_and_not_at_its_end() -> None:
    # At CPython's default threshold the cycle collector took 1.2-1.5 s of a 6 s plan of 20
    # accounts (issue 18), walking botocore's objects again and again; the interpreter's last
    # collection at exit, 0.5 s more: the command freezes what is left before it exits.
    import subprocess
    import sys
    from pathlib import Path

    from reconciler.cli import GC_THRESHOLD

    code = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print(gc.get_threshold()[0], gc.get_freeze_count()))\n"
        "from reconciler.cli import main\n"
        "sys.argv = ['reconciler', '--version']\n"
        "main()\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True
    )
    threshold, frozen = done.stdout.split()[-2:]
    assert int(threshold) == GC_THRESHOLD > 700  # CPython's default: 700
    assert int(frozen) > 0
