"""A network actor that dies once, for the killed-worker test of the Ray engine.

Ray imports this module in its worker processes (the tests' local Ray puts the
repository on their ``PYTHONPATH``). The marker file, named by the environment
variable ``FILTAG_TEST_DIE_MARKER`` of the tests' Ray, makes the death happen
once: the first actor to reach its third batch creates the marker and ends its
process at once (``os._exit``, as a kill -9 or an out-of-memory kill would:
no clean-up, its batch half done); its restarts find the marker and live.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from filtag.ray_engine import ProbeActor

#: The environment variable naming the marker file.
MARKER_VARIABLE = "FILTAG_TEST_DIE_MARKER"

#: The batch (counted per actor process, from 1) in which the actor dies.
DIE_AT = 3


class DyingProbeActor(ProbeActor):
    """A :class:`filtag.ray_engine.ProbeActor` whose process dies in one batch."""

    calls = 0

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls += 1
        marker = Path(os.environ[MARKER_VARIABLE])
        if self.calls == DIE_AT and not marker.exists():
            marker.write_text(f"{os.getpid()}\n")
            os._exit(1)
        return super().__call__(batch)
