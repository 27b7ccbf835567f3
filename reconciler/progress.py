"""Progress on stderr while a paced run reads hundreds of tags.

On a terminal: one live line, rewritten in place, with each region's count, pace and
estimate. Elsewhere (CI logs): a plain line every few seconds. `-q` turns it off. stdout
is never touched, so `--format json` stays clean.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TextIO

from reconciler.plan import Kind
from reconciler.render.escape import terminal_safe
from reconciler.render.text import place
from reconciler.results import AppliedItem, Result

LOG_EVERY = 5.0  # seconds between lines when stderr is not a terminal
REFRESH = 0.25  # seconds between live-line redraws on a terminal


class ProgressLine:
    def __init__(self, stream: TextIO, *, live: bool, enabled: bool = True) -> None:
        self.stream = stream
        self.live = live
        self.enabled = enabled
        self._regions: dict[str, tuple[str, int, int, float]] = {}
        self._lock = threading.Lock()
        self._start = time.monotonic()
        # The first line waits one interval: a run that is over by then needs no progress.
        self._last_write = self._start
        self._drawn = False
        self._wrote = False

    def __call__(self, region: str, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        with self._lock:
            started = self._regions.get(region, (phase, 0, total, now))[3]
            self._regions[region] = (phase, done, total, started)
            interval = REFRESH if self.live else LOG_EVERY
            due = now - self._last_write >= interval
            if not due and not (done == total and self._wrote):
                return
            self._last_write = now
            self._wrote = True
            text = "; ".join(self._describe(r, now) for r in sorted(self._regions))
            if self.live:
                self.stream.write("\r\x1b[2K" + text)
                self._drawn = True
            else:
                self.stream.write(text + "\n")
            self.stream.flush()

    def _describe(self, region: str, now: float) -> str:
        phase, done, total, started = self._regions[region]
        elapsed = now - started
        if elapsed < 1 or not done:
            return f"{region}: {phase} {done}/{total}"
        rate = done / elapsed
        eta = f", ~{_duration((total - done) / rate)} left" if done < total else ""
        # Tag reads are one call each; apply's items may take several (a confirming read,
        # then the change), so its rate is counted in items.
        unit = "items/s" if phase == "apply" else "calls/s"
        return f"{region}: {phase} {done}/{total}, {rate:.1f} {unit}{eta}"

    def note(self, text: str) -> None:
        """A line of its own (a retry, a region skipped): above the live line on a terminal,
        which the next update draws again. Printed even with -q: it is a diagnostic."""
        with self._lock:
            if self._drawn:
                self.stream.write("\r\x1b[2K")
                self._drawn = False
            # It may quote an AWS error message or a configured URL: never raw escapes.
            self.stream.write(terminal_safe(text) + "\n")
            self.stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._drawn:
                self.stream.write("\r\x1b[2K")
                self.stream.flush()
                self._drawn = False


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"


class WaitProgress:
    """`apply --wait`: every item still waited for (captures and copies in progress, and the
    items deferred until an image is AVAILABLE), each with its state or what it waits for,
    and the time elapsed; live on a terminal."""

    def __init__(self, stream: TextIO, *, live: bool, enabled: bool = True) -> None:
        self.stream = stream
        self.live = live
        self.enabled = enabled
        self._lines = 0
        self._last = -LOG_EVERY * 6

    def __call__(self, items: Sequence[AppliedItem], elapsed: float) -> None:
        if not self.enabled:
            return
        lines = [f"  {_waited(i)}, {_duration(elapsed)}" for i in items]
        if self.live:
            self._clear()
            self.stream.write("".join(line + "\n" for line in lines))
            self._lines = len(lines)
        elif elapsed - self._last >= LOG_EVERY * 6 or not items:
            self._last = elapsed
            count = f"{len(items)} item{'' if len(items) == 1 else 's'}"
            head = f"waiting for {count} ({_duration(elapsed)} so far)"
            self.stream.write(
                ("\n".join([head, *lines]) if items else "nothing left to wait for") + "\n"
            )
        self.stream.flush()

    def _clear(self) -> None:
        if self._lines:
            self.stream.write(f"\x1b[{self._lines}F\x1b[J")  # up N lines, clear below

    def close(self) -> None:
        if self.live:
            self._clear()
            self._lines = 0
            self.stream.flush()


# apply's deferral reasons end with advice for a run without --wait; while waiting, it is noise.
_ADVICE = "; run apply again later, or use --wait"
_MARKER = {Kind.IMAGE: "", Kind.BUNDLE: "bundle ", Kind.SHARE: "sharing of "}


def _waited(item: AppliedItem) -> str:
    """`name (region): PENDING` for an image in progress; a share or bundle says its kind,
    and a deferred item what it waits for. Names and reasons may come from specs and AWS."""
    why = (item.error or item.reason) if item.result is Result.DEFERRED else None
    status = why.removesuffix(_ADVICE) if why else (item.state or item.result.value)
    return terminal_safe(f"{_MARKER[item.kind]}{item.name} ({place(item)}): {status}")
