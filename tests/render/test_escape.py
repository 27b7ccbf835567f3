"""Untrusted text on a terminal: nothing may move the cursor or forge a line."""

import pytest

from reconciler.render.escape import terminal_safe


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J", "\\x1b[2J"),
        ("a\nNo changes.", "a\\x0aNo changes."),
        ("a\rb", "a\\x0db"),
        ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),
        ("\x9b31m", "\\x9b31m"),
        ("tab\tstays", "tab\tstays"),
        ("Zürich 東京", "Zürich 東京"),
    ],
)
def test_control_characters_are_shown_not_obeyed(raw: str, shown: str) -> None:
    assert terminal_safe(raw) == shown
