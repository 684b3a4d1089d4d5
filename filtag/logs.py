"""A run's log files, and progress bars that do not garble log lines.

Library code logs to ``logging.getLogger("filtag...")``: one INFO line per step
saying what it did, details at DEBUG, problems at WARNING. While a run works,
:func:`run_logs` copies everything to the run's ``-info.log`` and warnings to
its ``-warnings.log``; where the console shows it is the command line's choice
(:func:`filtag.cli.setup_logging`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from filtag.artifacts import Run
from filtag.errors import FiltagError

#: The logger every filtag module logs below.
ROOT = logging.getLogger("filtag")

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


@contextlib.contextmanager
def run_logs(run: Run) -> Iterator[None]:
    """Log everything to the run's ``-info.log``, warnings to ``-warnings.log``.

    A :class:`~filtag.errors.FiltagError` raised in the body is logged there
    too (marked, so the command line does not print it twice).
    """
    handlers = []
    for suffix, level in (
        ("info.log", logging.DEBUG),
        ("warnings.log", logging.WARNING),
    ):
        handler = logging.FileHandler(
            run.path(suffix), encoding="utf-8", errors="backslashreplace"
        )
        handler.setLevel(level)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        ROOT.addHandler(handler)
        handlers.append(handler)
    if ROOT.level == logging.NOTSET or ROOT.level > logging.DEBUG:
        ROOT.setLevel(logging.DEBUG)  # the files get everything
    try:
        yield
    except FiltagError as exc:
        ROOT.error("%s", exc)
        exc.logged = True  # type: ignore[attr-defined]
        raise
    finally:
        for handler in handlers:
            ROOT.removeHandler(handler)
            handler.close()


def plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """Return a run's inputs for a log line: paths as text, not ``PosixPath(...)``."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}


@contextlib.contextmanager
def progress(total: int, initial: int = 0, unit: str = "img") -> Iterator[tqdm]:
    """A progress bar on a terminal (none when stderr is not one).

    While it is shown, filtag's console log lines are printed above the bar
    instead of into it.
    """
    with (
        logging_redirect_tqdm(loggers=[ROOT]),
        tqdm(total=total, initial=initial, unit=unit, disable=None, leave=False) as bar,
    ):
        yield bar
