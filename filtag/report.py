"""The HTML report of a whole run: links to the plots, the hit rates, explained images.

The page is standalone and offline (no scripts, no CDN); it links the other
pages by relative paths, so the results folder can be moved or zipped whole.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from filtag.hitrates import Rates, rates_table


def report_html(
    title: str,
    facts: Sequence[str],
    pages: Sequence[tuple[str, Path]],
    totals: dict[str, Rates],
    explained: Sequence[tuple[str, Path]],
    folder: Path,
) -> str:
    """Return the report page.

    Args:
        title: the page's heading.
        facts: plain-text lines about the run (network, classes, accuracy ...).
        pages: (label, path) of the plot pages and text results to link.
        totals: step 4's pooled hit rates, {variant ("k", "q", "k_ll", "q_ll"):
            {value: {m: rate}}}.
        explained: (label, path) of explained images' pages.
        folder: where the report is written; links are relative to it.

    Returns:
        The page as text.
    """
    titles = {
        "k": "k most active filters, all layers",
        "q": "q % most active filters, all layers",
        "k_ll": "k most active filters, last layer",
        "q_ll": "q % most active filters, last layer",
    }
    tables = "".join(
        f"<h3>{html.escape(titles[variant])}</h3>"
        + rates_table(rates, variant[0], tablefmt="html")
        for variant, rates in totals.items()
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
