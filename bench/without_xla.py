"""Run a step script with its filter probe compiled without XLA.

    python bench/without_xla.py SCRIPT.py ARG ...

A stand-in for a ``--xla off`` flag (issue #9 item 1 adds one): on CPUs, XLA's
code for MobileNetV2's depthwise convolutions makes the probe many times
slower than the plain network (``BENCHMARKS.md``), which would hide the cost
of step 3's own work. The probe's results do not depend on XLA beyond float
rounding.
"""

from __future__ import annotations

import functools
import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from filtag import activations


def main() -> None:
    """Patch the probe's default, then run the script as ``__main__``."""
    activations.FilterProbe.__init__ = functools.partialmethod(
        activations.FilterProbe.__init__, jit_compile=False
    )
    script, *args = sys.argv[1:]
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
