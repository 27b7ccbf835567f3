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
