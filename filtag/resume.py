"""Resume state: the journal that lets steps 1 and 3 continue an interrupted run.

A resumable run appends to ``<prefix>-journal.pkl``: first a header (the run's
inputs), then one record each time a class is finished (step 1: the class's
float64 sums and image count; step 3: the name of the class file written).
Each record is one pickle, flushed and fsynced before the run goes on, so a
kill (even ``kill -9``) loses at most the class in progress; a record cut off
by the kill is dropped when the journal is read. The journal costs what the
classes cost, never a rewrite of the whole state. Classes may finish in any
order; a resumed run redoes the classes the journal does not hold, and its
results are bit-identical to an uninterrupted run's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from filtag import schema
from filtag.artifacts import (
    Run,
    dump_plain,
    find_run,
    remove_stale_temp_files,
    reserve_run,
)
from filtag.errors import ArtifactError, FiltagError
from filtag.safepickle import PickleRefused, load_one
from filtag.schema import JOURNAL

logger = logging.getLogger(__name__)

JOURNAL_SUFFIX = "journal.pkl"


class RunError(FiltagError):
    """An operating-system error in a run that ``--resume`` can continue."""


@dataclass
class Journal:
    """A resumable run's journal: its header and the records of finished classes.

    Attributes:
        path: the ``-journal.pkl`` file.
        header: the run's inputs, as the first record holds them.
        records: the records of the finished classes, in the order written.
    """

    path: Path
    header: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def create(cls, run: Run, header: dict[str, Any]) -> Journal:
        """Start the journal of a new run with its ``header``."""
        journal = cls(run.path(JOURNAL_SUFFIX), header)
        with journal.path.open("xb") as f:
            _append(f, header)
        return journal

    @classmethod
    def open(cls, run: Run, inputs: dict[str, Any], resume: str | None) -> Journal:
        """Start a new run's journal, or read the one of the run being resumed.

        Args:
            run: the run (from :func:`claim_run`).
            inputs: what decides the results; a resumed run must have the same.
            resume: None for a new run, else what ``--resume`` was given.

        Raises:
            FiltagError: the resumed run's inputs differ from ``inputs``.
        """
        if resume is None:
            return cls.create(run, {"inputs": inputs})
        journal = cls.read(run)
        saved = journal.header.get("inputs")
        saved = saved if isinstance(saved, dict) else {}
        for key, value in inputs.items():
            if saved.get(key) != value:
                raise FiltagError(
                    f"--resume {resume}: {key} was {saved.get(key)!r} in the "
                    f"interrupted run but is {value!r} now; pass the same inputs."
                )
        return journal

    @classmethod
    def read(cls, run: Run) -> Journal:
        """Read a run's journal; a last record cut off by a kill is dropped.

        Raises:
            ArtifactError: the journal is missing or not a filtag journal.
        """
        path = run.path(JOURNAL_SUFFIX)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ArtifactError(f"{path} cannot be read ({exc.strerror}).") from None
        items, good = [], 0
        while good < len(data):
            try:
                item, end = load_one(data, good, "a journal record")
            except (EOFError, pickle.UnpicklingError):  # cut off by a kill
                logger.debug("%s: dropped a cut-off last record", path)
                break
            except PickleRefused as exc:
                raise ArtifactError(
                    f"{path} is not a filtag file ({exc}); start a new run without "
                    "--resume."
                ) from None
            schema.validate(item, JOURNAL + ("header" if not items else run.tag), path)
            items.append(item)
            good = end
        if not items:
            raise ArtifactError(
                f"{path} is not a filtag journal; start a new run without --resume."
            )
        if good < len(data):
            os.truncate(path, good)  # later records follow the last whole one
        return cls(path, items[0], items[1:])

    def append(self, record: dict[str, Any]) -> None:
        """Add a finished class's ``record`` to the journal, durably."""
        with self.path.open("ab") as f:
            _append(f, record)
        self.records.append(record)

    def remove(self) -> None:
        """Delete the journal: the run is complete."""
        self.path.unlink(missing_ok=True)


def _append(f: BinaryIO, record: dict[str, Any]) -> None:
    """Write ``record`` as one pickle at the end of ``f``, flushed and fsynced."""
    dump_plain(f, "journal record", record)
    f.flush()
    os.fsync(f.fileno())


def claim_run(
    save_dir: Path, tag: str, network: str, time_delta: float, resume: str | None
) -> Run:
    """Claim a new run, or take up the interrupted one that ``resume`` names.

    Args:
        save_dir, tag, network, time_delta: as :func:`filtag.artifacts.reserve_run`.
        resume: None for a new run; else the run id or a file of the
            interrupted run (see :func:`filtag.artifacts.find_run`).

    Raises:
        FiltagError: no such interrupted run.
    """
    if resume is None:
        return reserve_run(save_dir, tag, network, time_delta)
    run = find_run(save_dir, resume, tag, JOURNAL_SUFFIX)
    remove_stale_temp_files(run.save_dir)
    return run


@contextlib.contextmanager
def resumable(run: Run) -> Iterator[None]:
    """Say how to continue ``run`` when the body is interrupted or the OS fails it.

    Raises:
        RunError: an :class:`OSError` in the body, as one line naming the path,
            the cause and ``--resume <run id>``.
        KeyboardInterrupt: with the same hint as its message.
    """
    hint = f"continue with --resume {run.run_id} (--save-dir {run.save_dir})"
    try:
        yield
    except OSError as exc:
        where = exc.filename or run.save_dir
        cause = exc.strerror or str(exc) or type(exc).__name__
        raise RunError(
            f"{where}: {cause}; free space or fix it, then {hint}."
        ) from None
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"finished classes are kept; {hint}") from None
