"""Run a step script with its network stalled from a given batch on (for kill tests).

    python -m tests.support.stall STALL_AT SCRIPT ARG...

runs ``SCRIPT.main(ARG...)`` with every call of the network probe from the
``STALL_AT``-th on sleeping for ten minutes first, so that a test can send a
signal while the run is known to stand right after its earlier batches (and
their checkpoints).
"""

from __future__ import annotations

import importlib
import sys
import time

from filtag import activations


def main(argv: list[str]) -> int:
    stall_at, script, *args = argv
    calls = 0
    original = activations.FilterProbe.__call__

    def call(probe, images):
        nonlocal calls
        calls += 1
        if calls >= int(stall_at):
            time.sleep(600)
        return original(probe, images)

    activations.FilterProbe.__call__ = call
    return importlib.import_module(script).main(args)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
