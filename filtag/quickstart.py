"""The demo run: every step and view on the embedded default, and a report page.

:func:`demo` makes the embedded default if needed (:mod:`filtag.default`),
runs steps 1-4 with the scripts' defaults, the tag page, the hit-rate plots and
three explained test images, and writes a report page that links them all.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filtag import default, params, report, steps, views
from filtag.artifacts import atomic_write_text
from filtag.results import RunResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoResult(RunResult):
    """The demo: ``path`` is the report page.

    Attributes:
        runs: the results of each step and view, by name (step1, ..., plots).
        summary: the best rule beside chance, and where the report is.
    """

    runs: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


def demo(
    *, save_dir: str | Path = "results", time_delta: float = 0, batch_size: int = 32
) -> DemoResult:
    """Run filtag end to end on the embedded default, offline.

    Args:
        save_dir: where every run writes its files.
        time_delta: hours from UTC for the run ids.
        batch_size: images per batch.

    Returns:
        The demo's runs; ``path`` is the report page.
    """
    v = params.checked(
        {"save_dir": save_dir, "time_delta": time_delta, "batch_size": batch_size}
    )
    files = default.ensure_default()
    accuracy = json.loads(files.accuracy.read_text())["test_accuracy"]
    common = {"save_dir": v["save_dir"], "time_delta": v["time_delta"]}
    runs: dict[str, Any] = {}
    runs["step1"] = steps.step1(batch_size=v["batch_size"], **common)
    runs["step2"] = steps.step2(activations_file=runs["step1"].path, export=True,
                                **common)  # fmt: skip
    runs["step3"] = steps.step3(
        filtags_file=runs["step2"].path, export=True, batch_size=v["batch_size"],
        **common,
    )  # fmt: skip
    runs["step4"] = steps.step4(eval_file=runs["step3"].path, **common)
    runs["vis"] = views.tag_views(filtags_file=runs["step2"].path, **common)
    runs["plots"] = views.hitrate_plots(hitrates_file=runs["step4"].path, **common)
    test_files = runs["step1"].load()["test_filenames"]
    explained = []
    for image in example_images(test_files):
        result = steps.explain(
            filtags_file=runs["step2"].path,
            image=files.images_dir / image,
            html=True,
            **common,
        )
        explained.append((image, result.page))
    v4 = runs["step4"].load()
    pages = [
        ("filter tags (k = 5): tag maps and classes sharing filters", runs["vis"].path),
        ("hit rates against m", runs["plots"].path),
        ("hit-rate tables (text)", _beside(runs["step4"].path, "-results.txt")),
        ("step 2 tags (CSV)", _beside(runs["step2"].path, "-tags.csv")),
        ("step 3 rankings (CSV)", _beside(runs["step3"].path, "-rankings.csv")),
    ]
    facts = [
        f"network: {files.model.name}, test accuracy {100 * accuracy:.2f} % on the "
        "10,000 Fashion-MNIST test images",
        f"{v4['meta']['images']} test images of {len(v4['hit_k'])} classes evaluated",
        *(f"step {i}: {runs[f'step{i}'].path.name}" for i in range(1, 5)),
    ]
    path = _beside(runs["step4"].path, "-report.html")
    atomic_write_text(
        path,
        report.report_html("filtag on the embedded default", facts, pages,
                           runs["step4"].totals, explained, v["save_dir"]),
    )  # fmt: skip
    summary = f"{runs['step4'].summary}; report: {path}"
    files_written = tuple(sorted(f for r in runs.values() for f in r.files))
    return DemoResult(runs["step4"].run_id, path, (*files_written, path), runs, summary)


def _beside(path: Path, suffix: str, old: str = "-vars.pkl") -> Path:
    """Return the run's file with ``suffix`` for ``old``: x-vars.pkl -> x-tags.csv."""
    return path.with_name(path.name.removesuffix(old) + suffix)


def example_images(test_files: list[str], n: int = 3) -> list[str]:
    """Return the first test image of the first ``n`` classes."""
    firsts = {path.split("/")[0]: path for path in reversed(test_files)}
    return [firsts[name] for name in sorted(firsts)[:n]]
