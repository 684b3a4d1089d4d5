"""The demo run: every step and view on the embedded default, and a report page.

:func:`demo` makes the embedded default if needed (:mod:`filtag.default`),
runs steps 1-4 with the scripts' defaults, the tag check (ablation), the tag
page with its filter cards and the hit-rate plots, explains three test images
(two hits and a miss; the tag page and the explanations under the best rule,
each active filter linked to its card), and writes a report page that opens
with the result, shows one filter card and where the filters fire on one
image, and links them all.
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from filtag import (
    cards,
    default,
    explanation,
    pages,
    params,
    report,
    steps,
    tagcheck,
    views,
)
from filtag.labels import display
from filtag.results import ExplainResult, RunResult, TagPageResult
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
    name, value, _ = report.best_rule(runs["step4"].totals)
    runs["vis"] = views.tag_views(
        filtags_file=runs["step2"].path, kind=variant(name).kind, value=value,
        **common,
    )  # fmt: skip
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
    verdicts = explanation.examples(
        explanation.step3_verdicts(runs["step3"].path, best, value)
    )
    explained = [
        _explained(verdict, best.kind, value, runs, files, common)
        for verdict in verdicts
    ]
    examples = [example for example, _ in explained]
    links = [
        (
            f"filter tags ({best.kind} = {value}): tag maps, classes sharing "
            "filters, and a card per filter with its exemplars (search by class)",
            runs["vis"].path,
        ),
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
        _spotlight(runs["vis"], verdicts[0].network, *explained[0], folder)
        if explained
        else "",
    )


def _spotlight(
    vis: TagPageResult,
    network: str,
    example: report.Example,
    result: ExplainResult,
    folder: Path,
) -> str:
    """Return the report's section with one filter card and one image's maps.

    Args:
        vis: the tag page (its cards).
        network: the explained image's network class.
        example, result: the explained image and its explanation run.
        folder: the report's folder (links are relative to it).

    Returns:
        HTML: the card that stands for ``network`` best
        (:func:`filtag.cards.featured`), then the image beside the summed map
        of its active filters tagged with ``network``.
    """
    card = cards.featured(vis.cards, network)
    page = vis.path.relative_to(folder).as_posix()
    parts = ["<h2>A filter card, and where the filters fire</h2>"]
    if card is not None:
        parts += [
            pages.paragraphs(
                [
                    "Each filter of the tag page has a card: its tags, its "
                    "activation for each class (step 1) and the train images "
                    "that activate it most, with its feature map laid over "
                    f"each. This filter stands for {display(network)}; the tag "
                    "page has a card for every filter, and a search box."
                ]
            ),
            cards.card_html(card, vis.classes, f"{page}#{quote(card.anchor)}"),
        ]
    if network in result.maps:
        href = html.escape(example.page.relative_to(folder).as_posix())
        parts += [
            "<p>Where the filters tagged "
            f"{html.escape(display(network))} fire on "
            f'<a href="{href}">{html.escape(example.label)}</a> (its explanation '
            "lays each active filter's map over the image, grouped by tag):</p>",
            '<div class="maps">'
            + pages.image_tag(example.image, 224, example.label)
            + pages.image_tag(result.maps[network], 224, f"{network} maps summed")
            + "</div>",
        ]
    return "\n".join(parts)


def _explained(
    verdict: explanation.Verdict,
    kind: str,
    value: int,
    runs: dict[str, Any],
    files: default.DefaultFiles,
    common: dict,
) -> tuple[report.Example, ExplainResult]:
    """Explain one test image of the default (a page linking the filter cards).

    Returns:
        The image for the report, and the explanation run.
    """
    image = files.images_dir / verdict.image
    result = steps.explain(
        filtags_file=runs["step2"].path, image=image, kind=kind, value=value,
        html=True, cards_page=runs["vis"].path, **common,
    )  # fmt: skip
    ranked = verdict.first or "no class"
    example = report.Example(
        verdict.image,
        result.page,
        image.read_bytes(),
        verdict.hit,
        f"network: {verdict.network}; tags: {ranked}",
    )
    return example, result


def _beside(path: Path, suffix: str, old: str = "-vars.pkl") -> Path:
    """Return the run's file with ``suffix`` for ``old``: x-vars.pkl -> x-tags.csv."""
    return path.with_name(path.name.removesuffix(old) + suffix)
