"""Step 4's results as text, and the HTML report of a whole run.

The tables and the summary line are plain text; the report page
(:func:`report_body` in :func:`filtag.pages.page`) is standalone and offline,
and links the other pages by relative paths, so the results folder can be
moved or zipped whole.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from filtag.hitrates import Rates, rates_table
from filtag.pages import figure_html, image_tag, link, paragraphs, table
from filtag.variants import VARIANTS, variant

if TYPE_CHECKING:
    import plotly.graph_objects as go

#: Hit rates of every variant: {variant name: {value: {m: rate}}}.
VariantRates = Mapping[str, Rates]


def chance(m: int, n_classes: int) -> float:
    """Return the hit rate of a random ranking at depth m: m / classes (at most 1)."""
    return min(1.0, m / n_classes)


def rate_tables(title: str, rates: VariantRates, tablefmt: str = "github") -> str:
    """Return one hit-rate table per variant (k, q, k_ll, q_ll) under ``title``.

    Args:
        title: what the rates are, e.g. "Total (pooled over all images)".
        rates: {variant name: {value: {m: rate}}}.
        tablefmt: a tabulate format.
    """
    return "\n".join(
        f"{title}, {v.title}: hit rate %\n"
        f"{rates_table(rates[v.name], v.kind, tablefmt)}\n"
        for v in VARIANTS
    )


def chance_line(m_values: Sequence[int], n_classes: int) -> str:
    """Return one line with the chance level of each m (m / classes, in %)."""
    levels = ", ".join(f"m={m} {100 * chance(m, n_classes):.1f} %" for m in m_values)
    return f"Chance (a random ranking, m / {n_classes} classes): {levels}"


def results_text(
    per_class: Mapping[str, Mapping[str, Rates]],
    totals: VariantRates,
    means: VariantRates,
    n_classes: int,
) -> str:
    """Return step 4's ``-results.txt``: the chance level, then the tables.

    Args:
        per_class: {variant name: {class name: {value: {m: rate}}}}.
        totals: {variant name: {value: {m: rate}}}, pooled over images.
        means: {variant name: {value: {m: rate}}}, mean over classes.
        n_classes: the network's classes (for the chance level).
    """
    m_values = sorted({m for rates in totals["k"].values() for m in rates})
    parts = [
        chance_line(m_values, n_classes) + "\n",
        rate_tables("Total (pooled over all images)", totals),
        rate_tables("Mean over classes", means),
    ]
    for name in per_class["k"]:
        by_variant = {v.name: per_class[v.name][name] for v in VARIANTS}
        parts.append(rate_tables(f"Class {name}", by_variant))
    return "\n".join(parts)


def best_rule(totals: VariantRates, m: int = 1) -> tuple[str, int, float]:
    """Return the rule with the highest pooled hit rate at depth ``m``.

    Returns:
        (variant name, value, rate); ties go to the first in variant, then
        value order.
    """
    best = ("k", 0, -1.0)
    for v in VARIANTS:
        for value, by_m in sorted(totals[v.name].items()):
            if m in by_m and by_m[m] > best[2]:
                best = (v.name, value, by_m[m])
    return best


def layers_words(name: str) -> str:
    """Return the layers a variant counts: ``all layers`` or ``last layer``."""
    v = variant(name)
    return f"{v.scope} layer{'' if v.last_layer else 's'}"


def summary_line(totals: VariantRates, n_classes: int) -> str:
    """Return the best rule's hit rate at the smallest m beside chance, one line."""
    m = min(m for rates in totals["k"].values() for m in rates)
    name, value, rate = best_rule(totals, m)
    return (
        f"best rule {variant(name).kind} = {value} ({layers_words(name)}): hit rate "
        f"{100 * rate:.1f} % at m = {m}, chance {100 * chance(m, n_classes):.1f} %"
    )


def headline(totals: VariantRates, n_classes: int, n_images: int) -> str:
    """Return the report's first sentence: the best agreement beside chance.

    E.g. "The filter tags rank the network's own class first for 66.8 % of the
    600 test images (k = 20, last layer); chance is 10.0 %."
    """
    m = min(m for rates in totals["k"].values() for m in rates)
    name, value, rate = best_rule(totals, m)
    where = "first" if m == 1 else f"among their first {m} classes"
    return (
        f"The filter tags rank the network's own class {where} for "
        f"{100 * rate:.1f} % of the {n_images} test images ({variant(name).kind} = "
        f"{value}, {layers_words(name)}); chance is {100 * chance(m, n_classes):.1f} %."
    )


@dataclass(frozen=True)
class Example:
    """An explained image on the report: a thumbnail linking to its page.

    Attributes:
        label: what to call it, e.g. ``Coat/0003.png``.
        page: its explanation page.
        image: the image file's bytes.
        hit: whether the tags rank the network's class first.
        caption: a few words under it, e.g. "network: Coat; tags: Coat".
    """

    label: str
    page: Path
    image: bytes
    hit: bool
    caption: str


def report_body(
    lead: str,
    facts: Sequence[str],
    figure: go.Figure,
    examples: Sequence[Example],
    examples_rule: str,
    links: Sequence[tuple[str, Path]],
    totals: VariantRates,
    n_classes: int,
    folder: Path,
    spotlight: str = "",
) -> str:
    """Return the report page's body (for :func:`filtag.pages.write_page`).

    In order: the headline, facts about the run, the hit-rate figure, the
    thumbnails of the explained images (hit or miss), the ``spotlight``
    section, links to the other pages and files, and the pooled hit-rate
    tables with the chance level.

    Args:
        lead: the headline (:func:`headline`).
        facts: plain-text lines about the run (network, classes, accuracy ...).
        figure: the pooled hit-rate figure (with the chance line).
        examples: the explained images.
        examples_rule: the rule of their verdicts, in words.
        links: (label, path) of the other pages and files.
        totals: step 4's pooled hit rates, {variant name: {value: {m: rate}}}.
        n_classes: the network's classes (for the chance level).
        folder: where the report is written; links are relative to it.
        spotlight: HTML shown after the explained images (e.g. a filter card
            and an image's maps); "": none.

    Returns:
        The body as HTML.
    """
    best = best_rule(totals)[0]
    thumbs = "".join(_thumbnail(e, folder) for e in examples)
    tables = "".join(
        f"<details{' open' if v.name == best else ''}><summary>"
        f"{html.escape(v.title)}</summary>"
        f"{_rates_table(totals[v.name], v.kind, n_classes)}</details>"
        for v in VARIANTS
    )
    return "\n".join(
        [
            f'<p class="headline">{html.escape(lead)}</p>',
            f'<ul class="facts">{"".join(f"<li>{html.escape(f)}</li>" for f in facts)}'
            "</ul>",
            figure_html(figure),
            "<h2>Explained test images</h2>",
            paragraphs(
                [
                    f"A hit ({examples_rule}): the class that the tags of the image's "
                    "most active filters rank first is the network's own class. "
                    "Click an image for its explanation."
                ]
            ),
            f'<div class="thumbs">{thumbs}</div>',
            spotlight,
            "<h2>More results</h2>",
            "<ul>"
            + "".join(f"<li>{link(label, path, folder)}</li>" for label, path in links)
            + "</ul>",
            "<h2>Hit rates (%), pooled over all test images</h2>",
            paragraphs(
                [
                    "A hit: the network's top-1 class is among the first m classes "
                    "ranked by the tags of the image's most active filters. The last "
                    f"row of each table is chance: m / {n_classes} classes."
                ]
            ),
            tables,
        ]
    )


def _thumbnail(e: Example, folder: Path) -> str:
    """Return an explained image as a thumbnail that links to its page."""
    word = "hit" if e.hit else "miss"
    href = html.escape(e.page.relative_to(folder).as_posix())
    return (
        f'<a class="is-{word}" href="{href}">{image_tag(e.image, 120, e.label)}<br>'
        f'<span class="{word}">{word}</span> {html.escape(e.label)}<br>'
        f"{html.escape(e.caption)}</a>"
    )


def _rates_table(rates: Rates, kind: str, n_classes: int) -> str:
    """Return {value: {m: rate}} as an HTML table in %, and a last row: chance."""
    m_values = sorted({m for by_m in rates.values() for m in by_m})
    rows = [
        [str(value), *(f"{100 * rates[value][m]:.1f}" for m in m_values)]
        for value in sorted(rates)
    ]
    rows.append(["chance", *(f"{100 * chance(m, n_classes):.1f}" for m in m_values)])
    return table(
        [kind, *(f"m={m}" for m in m_values)],
        rows,
        [""] * (len(rows) - 1) + ["chance"],
        left=(0,),
    )
