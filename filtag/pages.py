"""filtag's web pages: one template, one stylesheet, one shared plotly.js per folder.

Every page filtag writes (the filter tags, the hit-rate plots, the report of a
run, an explained image) is :func:`page` around a body of HTML built with the
helpers here. A page with figures loads plotly.js from a file beside it,
written once per results folder (:func:`write_plotly_js`), by a relative
``<script src>``: pages work offline, share one copy of the 4.8 MB script, and
keep working when the results folder is moved or zipped whole. Images are
embedded as ``data:`` addresses, so a page needs no other file.

:func:`show` puts a figure in a notebook in a form that Colab, Jupyter and
exported HTML all draw.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from filtag.artifacts import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    import plotly.graph_objects as go

#: plotly's options for every figure of a page (no plotly logo, resizes with it).
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}

#: The one stylesheet of every page.
STYLE = """
body { font-family: Arial, Helvetica, sans-serif; margin: 1.5em auto;
       max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: 0.3em; }
h2 { font-size: 1.2em; margin-top: 1.6em; border-top: 1px solid #ddd;
     padding-top: 0.6em; }
p, ul { max-width: 60em; }
.headline { font-size: 1.25em; max-width: 50em; margin: 0.4em 0 0.8em; }
.headline strong { color: #1f4e9c; }
.facts { color: #555; font-size: 0.92em; }
.figure { margin: 1.5em 0; border-top: 1px solid #ddd; padding-top: 0.5em; }
table { border-collapse: collapse; margin: 0.4em 0 1.2em; }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
td.name, th.name { text-align: left; }
tr.chance td { color: #666; font-style: italic; background: #f6f6f6; }
tr.network td, mark { background: #fff2b3; }
mark { padding: 0 2px; border-radius: 3px; }
.bar { display: inline-block; height: 0.8em; background: #1f4e9c;
       vertical-align: middle; margin-right: 4px; }
.hit, .miss { font-weight: bold; padding: 1px 6px; border-radius: 3px;
              color: #fff; }
.hit { background: #2e7d32; } .miss { background: #c62828; }
.verdict { font-size: 1.15em; }
.explained { display: flex; gap: 1.5em; align-items: flex-start; flex-wrap: wrap; }
.thumbs { display: flex; flex-wrap: wrap; gap: 1em; }
.thumbs a { display: block; text-align: center; color: #222;
            text-decoration: none; width: 150px; font-size: 0.9em; }
.thumbs img { border: 4px solid #ccc; border-radius: 4px; }
.thumbs a.is-hit img { border-color: #2e7d32; }
.thumbs a.is-miss img { border-color: #c62828; }
details { margin: 0.5em 0 1em; }
summary { cursor: pointer; color: #1f4e9c; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.3em 0.6em; }
.legend { font-size: 0.9em; color: #555; }
.ramp { display: inline-block; width: 140px; height: 0.9em; vertical-align: middle;
        border: 1px solid #bbb; }
.finder { position: sticky; top: 0; z-index: 10; background: #fff;
          padding: 0.4em 0; border-bottom: 1px solid #ddd; }
.finder input { width: 26em; font-size: 1em; padding: 2px 6px; }
#finder-status { color: #1f4e9c; }
#finder-found { font-size: 0.9em; max-height: 5em; overflow-y: auto; }
.layer-cards[hidden], .card[hidden] { display: none; }
.cards { display: flex; flex-direction: column; gap: 0.7em; }
.card { display: grid; grid-template-columns: max-content 1fr; align-items: start;
        gap: 0.3em 1.5em; border: 1px solid #ccc; border-radius: 6px;
        padding: 0.4em 0.8em; }
.card.focus { border-color: #1f4e9c; box-shadow: 0 0 0 3px #9bb8e8; }
.card h3 { grid-column: 1 / -1; margin: 0; font-size: 1em; }
.card-tags { grid-column: 1 / -1; margin: 0; }
table.acts { margin: 0; font-size: 0.82em; }
table.acts caption { text-align: left; color: #555; }
table.acts td { border: none; padding: 0 8px 0 0; text-align: left; }
table.acts tr.tagged td { background: #fff2b3; }
table.acts i { display: inline-block; height: 0.7em; background: #1f4e9c;
               margin-right: 4px; }
.exemplars { margin: 0; }
.exemplars img { display: block; }
.exemplars figcaption { display: grid; font-size: 0.75em; color: #555;
                        text-align: center; }
.group-body { display: flex; gap: 1.2em; align-items: flex-start; }
.maps { display: flex; flex-wrap: wrap; gap: 0.6em; }
.group figure { margin: 0; text-align: center; font-size: 0.8em; color: #444; }
.group img { display: block; }
.group h3 { font-size: 1em; margin: 1em 0 0.4em; }
"""


def page(title: str, body: str, plotly_js: str | None = None) -> str:
    """Return a standalone HTML page.

    Args:
        title: the page's title and heading (plain text).
        body: the HTML under the heading.
        plotly_js: the address of plotly.js (relative to the page), for a page
            with figures; None: no script.

    Returns:
        The page as text.
    """
    script = (
        f'<script src="{html.escape(plotly_js)}" charset="utf-8"></script>\n'
        if plotly_js
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{STYLE}</style>
{script}</head>
<body>
<h1>{html.escape(title)}</h1>
{body}
</body>
</html>
"""


def paragraphs(texts: Sequence[str], css: str | None = None) -> str:
    """Return plain-text paragraphs as HTML ``<p>`` elements of class ``css``."""
    attribute = f' class="{css}"' if css else ""
    return "\n".join(f"<p{attribute}>{html.escape(t)}</p>" for t in texts)


def link(label: str, path: Path, folder: Path) -> str:
    """Return ``<a>`` to ``path`` relative to the page's ``folder``."""
    href = html.escape(path.relative_to(folder).as_posix())
    return f'<a href="{href}">{html.escape(label)}</a>'


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    row_classes: Sequence[str] = (),
    left: Sequence[int] = (),
) -> str:
    """Return an HTML table.

    Args:
        headers: the column titles (plain text).
        rows: the cells, as HTML (escape text first).
        row_classes: per row, its CSS class ("" for none; e.g. ``network``
            highlights the row, ``chance`` greys it); missing rows: none.
        left: the columns aligned left (names; numbers align right).
    """

    def cells(tag: str, values: Sequence[str]) -> str:
        return "".join(
            f'<{tag} class="name">{v}</{tag}>' if i in left else f"<{tag}>{v}</{tag}>"
            for i, v in enumerate(values)
        )

    head = cells("th", [html.escape(h) for h in headers])
    css = [*row_classes, *[""] * (len(rows) - len(row_classes))]
    body = "".join(
        (f'<tr class="{c}">' if c else "<tr>") + cells("td", row) + "</tr>"
        for row, c in zip(rows, css, strict=True)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure_html(fig: go.Figure) -> str:
    """Return a figure as a ``<div class="figure">`` that needs plotly.js loaded."""
    import plotly.io as pio

    div = pio.to_html(
        fig,
        full_html=False,
        include_plotlyjs=False,
        config=PLOTLY_CONFIG,
        default_width="100%",
    )
    return f'<div class="figure">{div}</div>'


def plotly_js_name() -> str:
    """Return the file name of the shared plotly.js, e.g. ``plotly-4.1.1.min.js``."""
    from plotly.offline import get_plotlyjs_version

    return f"plotly-{get_plotlyjs_version()}.min.js"


def write_plotly_js(folder: Path) -> Path:
    """Write plotly's bundled plotly.js into ``folder`` unless it is there already.

    The file is named by plotly.js's version (:func:`plotly_js_name`), so pages
    made by another plotly keep theirs; it is written atomically, so pages
    written at the same time never see half a script.

    Returns:
        The script's path.
    """
    from plotly.offline import get_plotlyjs

    path = folder / plotly_js_name()
    script = get_plotlyjs().encode("utf-8")
    if not (path.is_file() and path.stat().st_size == len(script)):
        atomic_write_bytes(path, [script])
    return path


def write_page(path: Path, title: str, body: str, plotly: bool = False) -> int:
    """Write :func:`page` to ``path`` atomically (plotly.js beside it when needed).

    Args:
        path: the page's file.
        title: its title and heading.
        body: its HTML body (figures from :func:`figure_html`).
        plotly: the body has figures: write plotly.js beside the page (once)
            and load it from there.

    Returns:
        The page's size in bytes (without plotly.js).
    """
    script = write_plotly_js(path.parent).name if plotly else None
    text = page(title, body, script)
    atomic_write_text(path, text)
    return len(text.encode("utf-8"))


def image_tag(image: bytes, width: int, alt: str, css: str = "") -> str:
    """Return an ``<img>`` that embeds ``image`` shown ``width`` pixels wide.

    An image of up to twice ``width`` pixels is embedded as it is; a larger
    one is scaled down to twice ``width`` (sharp on high-density screens) and
    embedded as PNG or JPEG. A small image scaled up keeps its pixels square
    instead of blurring (an inline style, so it holds in a notebook too).

    Args:
        image: the image file's bytes (any format Pillow reads).
        width: the shown width in CSS pixels.
        alt: the alternative text.
        css: classes for the element.

    Returns:
        The element as text.
    """
    from PIL import Image

    with Image.open(io.BytesIO(image)) as picture:
        mime = Image.MIME.get(picture.format or "", "image/png")
        style = "image-rendering:pixelated" if picture.width < width else ""
        if picture.width > 2 * width:
            picture.thumbnail((2 * width, 2 * width * picture.height // picture.width))
            opaque = picture.mode in ("RGB", "L")
            mime = "image/jpeg" if opaque else "image/png"
            buffer = io.BytesIO()
            picture.save(buffer, "JPEG" if opaque else "PNG", quality=88)
            image = buffer.getvalue()
    data = base64.b64encode(image).decode("ascii")
    attributes = (f' class="{css}"' if css else "") + (
        f' style="{style}"' if style else ""
    )
    return (
        f'<img src="data:{mime};base64,{data}" width="{width}" '
        f'alt="{html.escape(alt)}"{attributes}>'
    )


def notebook_bundle(fig: go.Figure) -> dict[str, object]:
    """Return a figure as a notebook output that Colab, Jupyter and HTML exports draw.

    Two forms of the same figure: plotly's JSON (JupyterLab and Notebook 7
    draw it offline with plotly's bundled extension) and an HTML snippet
    that loads plotly.js from plotly's CDN (Colab, classic Jupyter, nbconvert's
    HTML export; drawn when the reader is online).

    Returns:
        {mime type: data}, for ``IPython.display.display(..., raw=True)``.
    """
    import plotly.io as pio

    figure = json.loads(pio.to_json(fig, validate=False))
    return {
        "application/vnd.plotly.v1+json": {**figure, "config": PLOTLY_CONFIG},
        "text/html": pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs="cdn",
            config=PLOTLY_CONFIG,
            default_width="100%",
        ),
        "text/plain": f"<plotly figure: {fig.layout.title.text or 'untitled'}>",
    }


def show(fig: go.Figure) -> None:
    """Show a figure in a notebook (see :func:`notebook_bundle`)."""
    from IPython.display import display

    display(notebook_bundle(fig), raw=True)
