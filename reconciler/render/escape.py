"""Escaping for text that comes from specs or from AWS, before it reaches a reader.

A spec is written by whoever opens a pull request, so its strings are untrusted: they must
not move a terminal's cursor, hide lines, or inject Markdown/HTML into a plan comment.
"""

from __future__ import annotations

import re

# C0 and C1 control characters (ESC among them) except tab; plus DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """Control characters shown as visible escapes, so `\\x1b[2J` cannot clear a screen."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
