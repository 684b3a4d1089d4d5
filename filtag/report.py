"""Step 4's results as text, and the HTML report of a whole run.

The tables and the summary line are plain text; the report page is standalone
and offline, and links the other pages by relative paths, so the results
folder can be moved or zipped whole.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

from filtag.hitrates import Rates, rates_table
from filtag.variants import VARIANTS, variant

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


def summary_line(totals: VariantRates, n_classes: int) -> str:
    """Return the best rule's hit rate at the smallest m beside chance, one line."""
    m = min(m for rates in totals["k"].values() for m in rates)
    name, value, rate = best_rule(totals, m)
    v = variant(name)
    return (
        f"best rule {v.kind} = {value} ({v.scope} layer{'' if v.last_layer else 's'}): "
        f"hit rate {100 * rate:.1f} % at m = {m}, chance "
        f"{100 * chance(m, n_classes):.1f} %"
    )


def report_html(
    title: str,
    facts: Sequence[str],
    pages: Sequence[tuple[str, Path]],
    totals: VariantRates,
    explained: Sequence[tuple[str, Path]],
    folder: Path,
) -> str:
    """Return the report page.

    Args:
        title: the page's heading.
        facts: plain-text lines about the run (network, classes, accuracy ...).
        pages: (label, path) of the plot pages and text results to link.
        totals: step 4's pooled hit rates, {variant name: {value: {m: rate}}}.
        explained: (label, path) of explained images' pages.
        folder: where the report is written; links are relative to it.

    Returns:
        The page as text.
    """
    tables = "".join(
        f"<h3>{html.escape(v.title)}</h3>"
        + rates_table(totals[v.name], v.kind, tablefmt="html")
        for v in VARIANTS
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: Arial, Helvetica, sans-serif; margin: 1.5em auto; max-width: 70em;
       padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1em; }}
td, th {{ border: 1px solid #ccc; padding: 2px 8px; text-align: right; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<ul>{"".join(f"<li>{html.escape(line)}</li>" for line in facts)}</ul>
<h2>Plots and results</h2>
<ul>{_links(pages, folder)}</ul>
<h2>Explained test images</h2>
<ul>{_links(explained, folder)}</ul>
<h2>Hit rates (%), pooled over all test images</h2>
<p>A hit: the network's top-1 class is among the first m classes ranked by the tags
of the image's most active filters.</p>
{tables}
</body></html>
"""


def _links(items: Sequence[tuple[str, Path]], folder: Path) -> str:
    """Return <li> links to ``items``, relative to ``folder``."""
    return "".join(
        f'<li><a href="{html.escape(path.relative_to(folder).as_posix())}">'
        f"{html.escape(label)}</a></li>"
        for label, path in items
    )
