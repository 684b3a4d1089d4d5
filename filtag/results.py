"""What a run returns: its id and every file it wrote.

The API functions (:func:`filtag.step1`, ...) return these; the command line
prints their ``path``.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filtag.artifacts import Run, load_vars


@dataclass(frozen=True)
class RunResult:
    """What a run wrote.

    Attributes:
        run_id: the run id, e.g. ``2026-11-30-0930`` (``-2`` ... when taken).
        path: the run's main file (its ``-vars.pkl``; what the script prints).
        files: every file of the run, sorted.
    """

    run_id: str
    path: Path
    files: tuple[Path, ...]

    def load(self) -> dict[str, Any]:
        """Return the variables of :attr:`path` (see :func:`filtag.load_vars`)."""
        return load_vars(self.path)


@dataclass(frozen=True)
class Step1Result(RunResult):
    """Step 1's run: ``path`` is its ``-vars.pkl`` (filter activations)."""


@dataclass(frozen=True)
class Step2Result(RunResult):
    """Step 2's run: ``path`` is its ``-vars.pkl`` (filter tags)."""


@dataclass(frozen=True)
class Step3Result(RunResult):
    """Step 3's run: ``path`` is its index ``-vars.pkl``; class files beside it."""


@dataclass(frozen=True)
class Step4Result(RunResult):
    """Step 4's run: ``path`` is its ``-vars.pkl``; ``-results.txt`` beside it.

    Attributes:
        totals: {variant ("k", "q", "k_ll", "q_ll"): {value: {m: rate}}},
            pooled over all evaluated images.
        summary: the best rule and its hit rate beside chance, one line.
    """

    totals: dict[str, dict[int, dict[int, float]]] = field(default_factory=dict)
    summary: str = ""


@dataclass(frozen=True)
class ExplainResult(RunResult):
    """An explanation run: ``path`` is its ``-results.txt``.

    Attributes:
        text: the explanation as printed.
        page: the HTML page, or None.
        maps: with a page, {class name: JPEG}: the image with the summed
            feature maps of the active filters tagged with the class, for the
            classes the page groups the filters by.
    """

    text: str = ""
    page: Path | None = None
    maps: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class TagPageResult(RunResult):
    """The tag page of ``filtag vis``: ``path`` is the page.

    Its files include the folder of the filter cards' pictures (when drawn).

    Attributes:
        cards: the filter cards of the shown layers, in layer order
            (:class:`filtag.cards.FilterCard`).
        classes: the class names, in the order of the cards' activations.
        notes: what the cards cannot show, and why (empty: they show all).
    """

    cards: tuple[Any, ...] = ()
    classes: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckResult(RunResult):
    """A tag check run: ``path`` is its ``-vars.pkl``.

    Attributes:
        summary: for how many classes the tagged filters matter, one line.
        text: the results as printed (``-results.txt``): the per-class table,
            the summary, the hit-rate baselines.
        page: the HTML page of the figures.
    """

    summary: str = ""
    text: str = ""
    page: Path | None = None


def result_of(cls: type, run: Run, path: Path, **extra: Any) -> Any:
    """Return a result of type ``cls`` listing every file of ``run``."""
    files = sorted(run.save_dir.glob(glob.escape(run.prefix) + "-*"))
    return cls(run.run_id, path, tuple(files), **extra)
