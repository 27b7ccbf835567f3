"""Progress on stderr while a paced run reads hundreds of tags.

On a terminal: one live line, rewritten in place, with each region's count, pace and
estimate. Elsewhere (CI logs): a plain line every few seconds. `-q` turns it off. stdout
is never touched, so `--format json` stays clean.
"""

from __future__ import annotations

import threading
import time
from typing import TextIO

LOG_EVERY = 5.0  # seconds between lines when stderr is not a terminal
REFRESH = 0.25  # seconds between live-line redraws on a terminal


class ProgressLine:
    def __init__(self, stream: TextIO, *, live: bool, enabled: bool = True) -> None:
        self.stream = stream
        self.live = live
        self.enabled = enabled
        self._regions: dict[str, tuple[str, int, int, float]] = {}
        self._lock = threading.Lock()
        self._last_write = 0.0
        self._start = time.monotonic()
        self._drawn = False

    def __call__(self, region: str, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        with self._lock:
            started = self._regions.get(region, (phase, 0, total, now))[3]
            self._regions[region] = (phase, done, total, started)
            interval = REFRESH if self.live else LOG_EVERY
            if now - self._last_write < interval and done != total:
                return
            self._last_write = now
            text = "; ".join(self._describe(r, now) for r in sorted(self._regions))
            if self.live:
                self.stream.write("\r\x1b[2K" + text)
                self._drawn = True
            else:
                self.stream.write(text + "\n")
            self.stream.flush()

    def _describe(self, region: str, now: float) -> str:
        phase, done, total, started = self._regions[region]
        elapsed = max(now - started, 1e-6)
        rate = done / elapsed
        left = (total - done) / rate if rate > 0 else 0.0
        eta = f", ~{_duration(left)} left" if done < total and done else ""
        return f"{region}: {phase} {done}/{total}, {rate:.1f}/s{eta}"

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
