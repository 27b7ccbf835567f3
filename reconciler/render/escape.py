"""Escaping for text that comes from specs or from AWS, before it reaches a reader.

A spec is written by whoever opens a pull request, so its strings are untrusted: they must
not move a terminal's cursor, hide lines, or inject Markdown/HTML into a plan comment.
"""

from __future__ import annotations

import re

# C0 and C1 control characters (ESC among them) except tab; plus DEL. Line feeds too, and
# Unicode's line and paragraph separators: every value shown is one line, and a newline in
# a live tag value must not forge a line of a plan.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def terminal_safe(text: str) -> str:
    """Control characters shown as visible escapes, so `\\x1b[2J` cannot clear a screen
    and a newline cannot add a line."""
    return _CONTROL.sub(_visible, text)


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
