"""The demo run: every step and view on the embedded default, and a report page.

:func:`demo` makes the embedded default if needed (:mod:`filtag.default`),
runs steps 1-4 with the scripts' defaults, the tag check (ablation), the tag
page, the hit-rate plots and three explained test images (two hits and a miss
under the best rule), and writes a report page that opens with the result and
links them all.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filtag import (
    default,
    explanation,
    pages,
    params,
    report,
    steps,
    tagcheck,
    views,
)
from filtag.results import RunResult
from filtag.variants import variant

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
    runs["check"] = tagcheck.check(
        filtags_file=runs["step2"].path, batch_size=v["batch_size"], **common
    )
    runs["vis"] = views.tag_views(filtags_file=runs["step2"].path, **common)
    runs["plots"] = views.hitrate_plots(hitrates_file=runs["step4"].path, **common)
    path = _beside(runs["step4"].path, "-report.html")
    pages.write_page(
        path,
        "filtag on the embedded default",
        _report_body(runs, files, common, v["save_dir"]),
        plotly=True,
    )
    summary = f"{runs['step4'].summary}; report: {path}"
    shared = v["save_dir"] / pages.plotly_js_name()
    files_written = sorted({f for r in runs.values() for f in r.files} | {shared})
    return DemoResult(runs["step4"].run_id, path, (*files_written, path), runs, summary)


def _report_body(
    runs: dict[str, Any], files: default.DefaultFiles, common: dict, folder: Path
) -> str:
    """Explain two hits and a miss under the best rule; return the report's body."""
    v4 = runs["step4"].load()
    totals = runs["step4"].totals
    name, value, _ = report.best_rule(totals)
    best = variant(name)
    examples = [
        _explained(verdict, best.kind, value, runs["step2"].path, files, common)
        for verdict in explanation.examples(
            explanation.step3_verdicts(runs["step3"].path, best, value)
        )
    ]
    links = [
        ("filter tags (k = 5): tag maps and classes sharing filters", runs["vis"].path),
        ("hit rates against m, and per class", runs["plots"].path),
        (
            f"tag check, do the tagged filters matter? {runs['check'].summary}",
            runs["check"].page,
        ),
        ("hit-rate tables (text)", _beside(runs["step4"].path, "-results.txt")),
        ("step 2 tags (CSV)", _beside(runs["step2"].path, "-tags.csv")),
        ("step 3 rankings (CSV)", _beside(runs["step3"].path, "-rankings.csv")),
    ]
    accuracy = json.loads(files.accuracy.read_text())["test_accuracy"]
    meta = v4["meta"]
    facts = [
        f"network: {files.model.name}, test accuracy {100 * accuracy:.2f} % on the "
        "10,000 Fashion-MNIST test images",
        f"{meta['images']} test images of {len(v4['hit_k'])} classes evaluated",
        *(f"step {i}: {runs[f'step{i}'].path.name}" for i in range(1, 5)),
    ]
    return report.report_body(
        report.headline(totals, meta["n_classes"], meta["images"]),
        facts,
        views.hitrate_figures(v4, meta["network"])[0],
        examples,
        f"{best.kind} = {value}, {report.layers_words(name)}, m = 1",
        links,
        totals,
        meta["n_classes"],
        folder,
    )


def _explained(
    verdict: explanation.Verdict,
    kind: str,
    value: int,
    filtags_file: Path,
    files: default.DefaultFiles,
    common: dict,
) -> report.Example:
    """Explain one test image of the default (a page); return it for the report."""
    image = files.images_dir / verdict.image
    result = steps.explain(
        filtags_file=filtags_file, image=image, kind=kind, value=value, html=True,
        **common,
    )  # fmt: skip
    ranked = verdict.first or "no class"
    return report.Example(
        verdict.image,
        result.page,
        image.read_bytes(),
        verdict.hit,
        f"network: {verdict.network}; tags: {ranked}",
    )


def _beside(path: Path, suffix: str, old: str = "-vars.pkl") -> Path:
    """Return the run's file with ``suffix`` for ``old``: x-vars.pkl -> x-tags.csv."""
    return path.with_name(path.name.removesuffix(old) + suffix)
