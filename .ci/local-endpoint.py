"""A local WorkSpaces endpoint for CI's action job: `python .ci/local-endpoint.py SPECS URL_FILE
[SECONDS]`.

It serves the end-to-end tests' endpoint (reconciler.emulator, the emulator the tests and
`reconciler demo` run) on 127.0.0.1, holding the source WorkSpaces that the specs name,
writes its URL to URL_FILE once it answers, and serves until SIGTERM or SIGINT, or for
SECONDS at most (default 1800), so that it never outlives the job by much. Run it from the
repository root, with the dev (or demo) extra installed.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's `reconciler`

from reconciler.emulator import FidelityConfig, local_endpoint
from reconciler.specs import load_specs

DEFAULT_REGION = "eu-west-1"


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 1
    specs, url_file = Path(argv[1]), Path(argv[2])
    seconds = float(argv[3]) if len(argv) == 4 else 1800.0
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # Captures end a second after they start, so that apply --wait and drift see AVAILABLE.
    with local_endpoint(FidelityConfig(capture_seconds=1.0)) as endpoint:
        for spec in load_specs(specs).specs:
            source = getattr(spec, "source_workspace_id", None)
            if source:
                # In the spec's account of the map, if the specs declare accounts.
                where = {"account_id": spec.account} if spec.account else {}
                endpoint.fidelity.add_workspace(spec.region or DEFAULT_REGION, source, **where)
        url_file.write_text(endpoint.url + "\n", encoding="utf-8")
        print(f"Local WorkSpaces endpoint at {endpoint.url}", flush=True)
        stop.wait(seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
