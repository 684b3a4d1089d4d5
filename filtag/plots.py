"""Figures of filtag's results: the filter tags (step 2) and the hit rates (step 4).

The functions take plain data, the variables of the step files and numpy
arrays, and return :class:`plotly.graph_objects.Figure` objects; the last
section renders figures as PNG images (pages are :mod:`filtag.pages`'s).
Nothing here reads or writes a file.

Pages stay fast for ResNet-sized networks (thousands of filters, 1000 classes):
a tag map or co-tagging matrix is ONE heatmap trace whose numbers plotly embeds
as packed binary arrays, and only the layers asked for (by default the last
:data:`DEFAULT_LAST_LAYERS`) are drawn.
"""

from __future__ import annotations

import asyncio
import html
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from filtag.errors import FiltagError
from filtag.report import chance

#: Layers shown when none are asked for: the last ones of the network.
DEFAULT_LAST_LAYERS = 4

#: A tag map whose cells' hover texts would exceed this many characters in all
#: hovers without the filter's tags in each cell (the bars above still show them).
HOVER_CHARS = 1_000_000

#: Layers up to this many filters get a bar per filter; bigger ones a step line.
BAR_FILTERS = 512

#: Most bars per layer in the histogram of tags per filter.
HISTOGRAM_BINS = 60

#: Tags listed in one hover label; the rest are counted.
HOVER_TAGS = 20

#: The step-2 tags of one layer: ``[[class names] per filter]``.
LayerTags = Sequence[Sequence[str]]

#: Hit rates ``{k or q value: {m: rate in [0, 1]}}``.
Rates = Mapping[int, Mapping[int, float]]

TAGGED = "#1f4e9c"
UNTAGGED = "#eef1f5"
CHANCE = "#888888"
FONT = {"family": "Arial, Helvetica, sans-serif", "size": 13}
PNG_WIDTH = 1100

# ----------------------------------------------------------------- names, choices


def layer_names(meta: Mapping[str, Any] | None, n_layers: int) -> list[str]:
    """Return the names of the step-2 file's layers.

    Args:
        meta: the step-2 file's ``meta`` (None for a file of the original
            FilTag scripts).
        n_layers: the number of layers in ``filTags_k[value]``.

    Returns:
        ``meta["step1"]["layer_names"]`` when step 1's meta is there, else
        ``["layer 0", "layer 1", ...]``; length ``n_layers``.
    """
    step1 = meta.get("step1") if meta else None
    if isinstance(step1, dict) and len(step1.get("layer_names", ())) == n_layers:
        return [str(name) for name in step1["layer_names"]]
    return [f"layer {a}" for a in range(n_layers)]


def class_names(
    meta: Mapping[str, Any] | None, filtags: Mapping[int, Sequence[LayerTags]]
) -> list[str]:
    """Return the class names in class-index order.

    Args:
        meta: the step-2 file's ``meta`` (None for a file of the original
            FilTag scripts).
        filtags: ``filTags_k`` or ``filTags_q``.

    Returns:
        ``meta["class_names"]``; without it, the sorted names found in the tags
        (classes that tag no filter are then unknown and left out).
    """
    if meta and meta.get("class_names"):
        return [str(name) for name in meta["class_names"]]
    return sorted(
        {
            name
            for layers in filtags.values()
            for layer in layers
            for tags in layer
            for name in tags
        }
    )


def choose_layers(requested: Sequence[str] | None, names: Sequence[str]) -> list[int]:
    """Return the indices of the layers to show.

    Args:
        requested: layer names or indices (0 = the first selected layer) as
            text, e.g. ``["conv4", "2"]``, in the order to show them; None: the
            last :data:`DEFAULT_LAST_LAYERS` layers.
        names: every layer's name, in model order.

    Returns:
        Layer indices in ``[0, len(names))``, without repeats.

    Raises:
        FiltagError: an entry is neither a layer name nor an index.
    """
    if not requested:
        return list(range(max(0, len(names) - DEFAULT_LAST_LAYERS), len(names)))
    chosen = []
    for item in requested:
        if item in names:
            chosen.append(list(names).index(item))
        elif item.isdigit() and int(item) < len(names):
            chosen.append(int(item))
        else:
            shown = ", ".join(names[-10:])
            raise FiltagError(
                f"--layers {item!r} is neither a layer name nor an index 0-"
                f"{len(names) - 1}; the last layers are {shown}."
            )
    return list(dict.fromkeys(chosen))


def rule_text(kind: str, value: int, filters: int | None = None) -> str:
    """Return the selection rule in words, e.g. ``"k = 5: the 5 most active ..."``.

    Args:
        kind: "k" or "q".
        value: the k or q value.
        filters: the layer's number of filters, when the text is for one layer
            (a k above it selects by the mean rule, as step 2 does).
    """
    mean_rule = value == 0 or (kind == "q" and value > 100)
    if mean_rule or (kind == "k" and filters is not None and value > filters):
        return f"{kind} = {value}: the filters above the layer's mean activation"
    if kind == "q":
        return f"q = {value}: the {value} % most active filters of the layer"
    return f"k = {value}: the {value} most active filters of the layer"


# ----------------------------------------------------------------------- counts


def tag_matrix(layer_tags: LayerTags, classes: Sequence[str]) -> np.ndarray:
    """Return which filters of a layer are tagged with which class.

    Args:
        layer_tags: ``filTags[value][layer]``, the class names of each filter.
        classes: the class names; row c of the result is ``classes[c]``.

    Returns:
        uint8, shape (classes, filters): 1 where the filter carries the class.
    """
    row = {name: c for c, name in enumerate(classes)}
    matrix = np.zeros((len(classes), len(layer_tags)), np.uint8)
    for f, tags in enumerate(layer_tags):
        matrix[[row[name] for name in tags], f] = 1
    return matrix


def tags_per_filter(layer_tags: LayerTags) -> np.ndarray:
    """Return the number of tags of each filter: int64, shape (filters,)."""
    return np.array([len(tags) for tags in layer_tags], np.int64)


def cotag_matrix(tags: np.ndarray) -> np.ndarray:
    """Return how many filters each pair of classes shares.

    Args:
        tags: a :func:`tag_matrix`, shape (classes, filters).

    Returns:
        int64, shape (classes, classes): entry (a, b) = the number of filters
        tagged with both a and b; the diagonal = the filters tagged with a.
    """
    t = tags.astype(np.float32)  # BLAS; sums of 0/1 are exact below 2**24
    return np.rint(t @ t.T).astype(np.int64)


def _compact(counts: np.ndarray) -> np.ndarray:
    """Return whole-number ``counts`` in the smallest unsigned dtype that holds them."""
    return counts.astype(np.min_scalar_type(int(counts.max(initial=0))))


def _tag_list(tags: Sequence[str]) -> str:
    """Return a filter's tags for a hover label, at most :data:`HOVER_TAGS` of them."""
    if not tags:
        return "no tag"
    shown = ", ".join(tags[:HOVER_TAGS])
    more = len(tags) - HOVER_TAGS
    return shown + (f", ... and {more} more" if more > 0 else "")


def _wrap(text: str, width: int = 90) -> str:
    """Break a hover text at ``", "`` into lines of about ``width`` characters."""
    lines, line = [], ""
    for part in text.split(", "):
        if line and len(line) + len(part) > width:
            lines.append(line + ",")
            line = part
        else:
            line = f"{line}, {part}" if line else part
    return "<br>".join([*lines, line])


# ------------------------------------------------------------------- tag figures


def styled(
    fig: go.Figure,
    title: str,
    subtitle: str,
    height: int,
    wrap: int | None = None,
    top: int = 90,
) -> go.Figure:
    """Give ``fig`` filtag's look: white template, a title and a subtitle.

    Args:
        fig: the figure, changed in place.
        title, subtitle: plain text (escaped here).
        height: the figure's height in pixels.
        wrap: break the subtitle into lines of at most this many characters
            (None: one line).
        top: the top margin in pixels (room for the title and subtitle).

    Returns:
        ``fig``.
    """
    lines = textwrap.wrap(subtitle, wrap) if wrap else [subtitle]
    fig.update_layout(
        template="plotly_white",
        font=FONT,
        height=height,
        title={
            "text": f"{html.escape(title)}<br><sup>"
            + "<br>".join(html.escape(line) for line in lines)
            + "</sup>",
            "x": 0.01,
            "xanchor": "left",
        },
        margin={"t": top, "l": 80, "r": 40, "b": 60},
        hoverlabel={"align": "left"},
    )
    return fig


def tag_map_figure(
    layer_tags: LayerTags,
    classes: Sequence[str],
    layer: str,
    rule: str,
    hover_chars: int = HOVER_CHARS,
) -> go.Figure:
    """Return the tag map of one layer: which filters carry which class tags.

    Top: each filter's number of tags, as bars (a filled step line, one SVG
    path, above :data:`BAR_FILTERS` filters; hover: the tags). Bottom: a
    heatmap, filter x class, dark where the filter is tagged with the class
    (hover: layer, filter, class and, while all cells' texts stay within
    ``hover_chars`` characters, the filter's tags).

    Args:
        layer_tags: ``filTags[value][layer]``, the class names of each filter.
        classes: the class names in class-index order (the heatmap's rows).
        layer: the layer's name.
        rule: the rule in words (:func:`rule_text`).
        hover_chars: above this many characters of cell texts in all, the
            heatmap hover leaves out the tags (the bars still show them), to
            keep big pages small.

    Returns:
        A figure with traces ``[Bar or Scatter (x: filters, y: tags per
        filter), Heatmap (z: uint8, shape (classes, filters), from
        :func:`tag_matrix`)]``.
    """
    tags = tag_matrix(layer_tags, classes)
    counts = tags_per_filter(layer_tags)
    filters = np.arange(len(layer_tags))
    lists = [_wrap(_tag_list(list(t))) for t in layer_tags]
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.22, 0.78],
        vertical_spacing=0.04,
    )  # fmt: skip
    counted = {
        "x": filters,
        "y": counts,
        "customdata": lists,
        "name": "tags per filter",
        "hovertemplate": f"layer {html.escape(layer)}<br>filter %{{x}}: %{{y}} tags"
        "<br>%{customdata}<extra></extra>",
    }
    if len(layer_tags) <= BAR_FILTERS:
        fig.add_trace(go.Bar(marker_color=TAGGED, **counted), row=1, col=1)
    else:  # one SVG path instead of a bar each
        step = {"shape": "hvh", "color": TAGGED, "width": 1}
        fig.add_trace(
            go.Scatter(mode="lines", line=step, fill="tozeroy", **counted), row=1, col=1
        )
    where = f"layer {html.escape(layer)}<br>filter %{{x}}<br>class %{{y}}"
    lead = [
        "not tagged with it<br>tags of the filter: ",
        "tagged with this class<br>tags of the filter: ",
    ]
    if len(classes) * sum(len(lead[0]) + len(t) for t in lists) <= hover_chars:
        text = np.char.add(np.array(lead)[tags], lists)
        hover = {"text": text, "hovertemplate": f"{where}: %{{text}}<extra></extra>"}
    else:
        hover = {
            "hovertemplate": f"{where}<br>tagged: %{{z}} (1 yes, 0 no)<extra></extra>"
        }
    gap = 1 if len(layer_tags) <= 128 else 0
    fig.add_trace(
        go.Heatmap(
            z=tags,
            x=filters,
            y=list(classes),
            colorscale=[[0, UNTAGGED], [1, TAGGED]],
            zmin=0,
            zmax=1,
            showscale=False,
            xgap=gap,
            ygap=1 if len(classes) <= 64 else 0,
            name="tags",
            **hover,
        ),
        row=2,
        col=1,
    )
    most = int(counts.max(initial=0))
    fig.update_yaxes(title_text="tags", dtick=max(1, -(-most // 4)), row=1, col=1)
    fig.update_yaxes(title_text="class", autorange="reversed", row=2, col=1)
    fig.update_xaxes(title_text="filter index", row=2, col=1)
    fig.update_layout(showlegend=False, hovermode="closest", bargap=0.2 * gap)
    height = 260 + min(720, max(240, 22 * len(classes)))
    return styled(
        fig,
        f"Layer {layer}: which filters carry which class tags",
        f"{rule}. Dark cell: the filter is tagged with the class. "
        "Drag to zoom in, double-click to zoom out.",
        height,
    )


def tags_histogram_figure(
    layers_tags: Sequence[LayerTags], layers: Sequence[str], rule: str
) -> go.Figure:
    """Return how many tags the filters carry: one group of bars per layer.

    Up to :data:`HISTOGRAM_BINS` numbers of tags, each number has its bar;
    beyond, a bar counts a range of equal width.

    Args:
        layers_tags: ``filTags[value][layer]`` for each shown layer.
        layers: the shown layers' names.
        rule: the rule in words (:func:`rule_text`).

    Returns:
        One Bar trace per layer: x = the middle of each range of numbers of
        tags (the numbers themselves, 0, 1, ..., for one number per bar), y =
        the filters of the layer whose :func:`tags_per_filter` falls in it (a
        layer's bars sum to its filters); customdata (bars, 2) = [range as
        text, % of the layer's filters].
    """
    most = max((len(tags) for layer in layers_tags for tags in layer), default=0)
    width = -(-(most + 1) // HISTOGRAM_BINS)  # ceil: numbers of tags per bar
    starts = np.arange(0, most + 1, width)
    ranges = [str(s) if width == 1 else f"{s}-{s + width - 1}" for s in starts]
    fig = go.Figure()
    colours = sample_colorscale("Viridis", np.linspace(0, 0.85, len(layers)).tolist())
    for layer_tags, name, colour in zip(layers_tags, layers, colours, strict=True):
        filters = np.bincount(
            tags_per_filter(layer_tags) // width, minlength=len(starts)
        )
        share = 100 * filters / max(1, len(layer_tags))
        fig.add_trace(
            go.Bar(
                x=starts + (width - 1) / 2,
                y=filters,
                customdata=np.column_stack([ranges, np.round(share, 1)]),
                name=name,
                marker_color=colour,
                hovertemplate=f"layer {html.escape(name)}<br>%{{y}} filters "
                "(%{customdata[1]} %) carry %{customdata[0]} tags<extra></extra>",
            )
        )
    fig.update_xaxes(
        title_text="number of class tags on a filter", dtick=1 if most <= 20 else None
    )
    fig.update_yaxes(title_text="number of filters")
    fig.update_layout(barmode="group", legend_title_text="layer")
    return styled(
        fig,
        "How many class tags each filter carries",
        f"{rule}. A filter without tags is never among the most active for any "
        "class; a filter with many tags is shared by many classes.",
        460,
    )


def cotag_figure(
    layer_tags: LayerTags, classes: Sequence[str], layer: str, rule: str
) -> go.Figure:
    """Return which classes share filters in one layer.

    Args:
        layer_tags: ``filTags[value][layer]``, the class names of each filter.
        classes: the class names in class-index order.
        layer: the layer's name.
        rule: the rule in words (:func:`rule_text`).

    Returns:
        One Heatmap trace: z (classes, classes) = :func:`cotag_matrix`, entry
        (a, b) the number of filters tagged with both a and b, the diagonal
        the filters tagged with a; stored in the smallest unsigned dtype.
    """
    counts = cotag_matrix(tag_matrix(layer_tags, classes))
    top = int(counts.max(initial=0))
    fig = go.Figure(
        go.Heatmap(
            z=_compact(counts),
            x=list(classes),
            y=list(classes),
            zmin=0,
            zmax=max(1, top),
            colorscale="Blues",
            colorbar={
                "title": {"text": "shared<br>filters"},
                "dtick": 1 if top <= 10 else None,
            },
            xgap=1 if len(classes) <= 64 else 0,
            ygap=1 if len(classes) <= 64 else 0,
            hovertemplate=f"layer {html.escape(layer)}<br>%{{z}} filters tagged with "
            "both<br>%{y} and<br>%{x}<extra></extra>",
        )
    )
    fig.update_yaxes(title_text="class", autorange="reversed", scaleanchor="x")
    fig.update_xaxes(title_text="class", tickangle=-45, constrain="domain")
    size = min(900, max(480, 40 + 18 * len(classes)))
    fig.update_layout(width=size + 320)  # square cells, the colour bar beside them
    return styled(
        fig,
        f"Layer {layer}: which classes share filters",
        f"{rule}. Cell (a, b): the filters tagged with both classes; diagonal: "
        "the filters tagged with the class.",
        size + 150,
    )


# ------------------------------------------------------------- hit-rate figures


def _value_colours(values: Sequence[int]) -> list[str]:
    """Return one colour per rule value, dark (small values) to light."""
    points = np.linspace(0, 0.85, len(values)) if len(values) > 1 else [0.0]
    return sample_colorscale("Viridis", list(points))


def _value_label(kind: str, value: int) -> str:
    """Return a legend label such as ``k = 5`` or ``k = 0 (above mean)``."""
    return f"{kind} = {value}" + (" (above mean)" if value == 0 else "")


def hitrate_figure(
    rates: Mapping[str, Rates], title: str, subtitle: str, n_classes: int | None = None
) -> go.Figure:
    """Return hit rate (%) against m: one line per k and per q value, and chance.

    Args:
        rates: ``{"k": totalhit_k, "k_ll": totalhit_k_ll, "q": totalhit_q,
            "q_ll": totalhit_q_ll}`` (or the ``meanhit_*``), each
            ``{value: {m: rate in [0, 1]}}``; a kind without values is left out.
        title: the figure's title.
        subtitle: the line under it (e.g. how many images).
        n_classes: the network's classes, for the chance line (m / classes);
            None: no chance line.

    Returns:
        Subplots: a row per kind (k, q), columns all layers | last layer; one
        Scatter trace per (kind, value, column), x = m, y = 100 * rate; with
        ``n_classes``, then one dotted Scatter per subplot named ``chance``.
    """
    kinds = [kind for kind in ("k", "q") if rates.get(kind)]
    what = {"k": "k most active filters", "q": "q % most active filters"}
    fig = make_subplots(
        rows=max(1, len(kinds)),
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.05,
        vertical_spacing=0.14,
        subplot_titles=[
            f"{what[kind]}, {where}"
            for kind in kinds
            for where in ("all layers", "last layer only")
        ],
    )
    placed: list[tuple[go.Scatter, int, int]] = []  # added at once: much faster
    for row, kind in enumerate(kinds, start=1):
        values = sorted(rates[kind])
        for value, colour in zip(values, _value_colours(values), strict=True):
            label = _value_label(kind, value)
            for col, variant in enumerate((kind, f"{kind}_ll"), start=1):
                by_m = rates[variant][value]
                ms = sorted(by_m)
                line = go.Scatter(
                    x=ms,
                    y=[100 * by_m[m] for m in ms],
                    mode="lines+markers",
                    name=label,
                    legendgroup=f"{kind}{value}",
                    legend="legend" if row == 1 else "legend2",
                    showlegend=col == 1,
                    line={"color": colour, "dash": "dash" if value == 0 else None},
                    hovertemplate=f"{label}, m = %{{x}}<br>hit rate %{{y:.1f}} %"
                    "<extra></extra>",
                )
                placed.append((line, row, col))
        m_values = sorted({m for by_m in rates[kind].values() for m in by_m})
        fig.update_xaxes(tickvals=m_values, row=row)
        if n_classes:
            placed += [
                (_chance_line(m_values, n_classes, row == col == 1), row, col)
                for col in (1, 2)
            ]
    if placed:
        traces, rows_of, cols_of = zip(*placed, strict=True)
        fig.add_traces(list(traces), rows=list(rows_of), cols=list(cols_of))
    fig.update_xaxes(title_text="m (first m classes of the tag ranking)")
    fig.update_yaxes(title_text="hit rate (%)", range=[-3, 103], col=1)
    fig.update_yaxes(range=[-3, 103], col=2)
    rows = max(1, len(kinds))
    for n in range(1, rows + 1):
        top = 1 - (n - 1) / rows
        fig.update_layout(
            {
                "legend" if n == 1 else f"legend{n}": {
                    "y": top,
                    "yanchor": "top",
                    "x": 1.02,
                    "maxheight": 0.9 / rows,
                }
            }
        )
    return styled(fig, title, subtitle, 140 + 360 * rows)


def _chance_line(m_values: Sequence[int], n_classes: int, legend: bool) -> go.Scatter:
    """Return the hit rate of a random ranking, 100 * m / classes, as a dotted line."""
    label = f"chance (m / {n_classes})"
    return go.Scatter(
        x=list(m_values),
        y=[100 * chance(m, n_classes) for m in m_values],
        mode="lines",
        name=label,
        legendgroup="chance",
        legend="legend",
        legendrank=1,  # first in the legend
        showlegend=legend,
        line={"color": CHANCE, "dash": "dot", "width": 2},
        hovertemplate=f"{label}, m = %{{x}}: %{{y:.1f}} %<extra></extra>",
    )


def class_hitrate_figure(
    hits: Mapping[str, Mapping[str, Rates]], m: int, n_classes: int | None = None
) -> go.Figure:
    """Return each class's hit rate (%) at depth m, as a heatmap per kind.

    Args:
        hits: ``{"k": hit_k, "q": hit_q}``, each ``{class name: {value: {m:
            rate in [0, 1]}}}``; a kind without classes is left out.
        m: the ranking depth shown.
        n_classes: the network's classes: the colours turn from red (below
            chance, m / classes) through white (chance) to blue; None: a
            plain colour scale.

    Returns:
        One Heatmap trace per kind: rows = classes (in the file's order),
        columns = the values (as text, e.g. ``"5"``), z = 100 * rate at ``m``.
    """
    level = 100 * chance(m, n_classes) if n_classes else None
    colours: Any = (
        [[0, "#b2182b"], [level / 100, "#f7f7f7"], [1, "#2166ac"]]
        if level is not None and 0 < level < 100
        else "Viridis"
    )
    kinds = [kind for kind in ("k", "q") if hits.get(kind)]
    fig = make_subplots(
        rows=1,
        cols=max(1, len(kinds)),
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=[f"{kind} values, all layers" for kind in kinds],
    )
    n_classes = 0
    for col, kind in enumerate(kinds, start=1):
        classes = list(hits[kind])
        values = sorted(next(iter(hits[kind].values())))
        z = np.array([[100 * hits[kind][c][v][m] for v in values] for c in classes])
        n_classes = len(classes)
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=[str(v) for v in values],
                y=classes,
                zmin=0,
                zmax=100,
                colorscale=colours,
                colorbar={"title": {"text": "hit rate %"}},
                showscale=col == 1,
                texttemplate="%{z:.0f}" if z.size <= 600 else None,
                hovertemplate=f"class %{{y}}<br>{kind} = %{{x}}, m = {m}<br>hit rate "
                "%{z:.1f} %<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text=kind, type="category", row=1, col=col)
    fig.update_yaxes(autorange="reversed", title_text="class", col=1)
    height = 200 + min(800, max(240, 22 * n_classes))
    return styled(
        fig,
        f"Hit rate per class at m = {m}",
        "How often the network's own class is "
        + ("the first" if m == 1 else f"among the first {m}")
        + " tag-ranked class, for the test images of each class (%)."
        + (f" Chance: {level:.1f} % (white); blue is above it." if level else ""),
        height,
    )


# ------------------------------------------------------------------ serialising


def png_images(figures: Sequence[go.Figure], width: int = PNG_WIDTH) -> list[bytes]:
    """Return each figure as PNG bytes, rendered by kaleido in headless Chromium.

    One browser renders all figures, with the plotly.js that ships with plotly
    and without MathJax, so nothing is fetched from the network. kaleido finds
    Chrome or Chromium on the PATH (Debian: ``apt-get install chromium``) or at
    the ``BROWSER_PATH`` environment variable.

    Args:
        figures: the figures; each keeps its own layout height (and width).
        width: the image width in pixels of a figure without its own.

    Returns:
        The PNG files' bytes, one per figure.

    Raises:
        FiltagError: kaleido is not installed, or no browser could be started.
    """
    try:
        import kaleido
        from kaleido.errors import (
            BrowserClosedError,
            BrowserFailedError,
            ChromeNotFoundError,
        )
    except ImportError:
        raise FiltagError(
            "the kaleido package is not installed; pip install 'kaleido>=1'."
        ) from None

    async def render() -> list[bytes]:
        async with kaleido.Kaleido(mathjax=False) as renderer:
            return [
                await renderer.calc_fig(
                    fig,
                    opts={
                        "format": "png",
                        "width": fig.layout.width or width,
                        "height": fig.layout.height,
                    },
                )
                for fig in figures
            ]

    try:
        return asyncio.run(render())
    except (ChromeNotFoundError, BrowserFailedError, BrowserClosedError) as exc:
        reason = " ".join(str(exc).split()).split(". ")[0]
        raise FiltagError(
            f"no working Chrome/Chromium to render them ({reason}); install one "
            "(Debian: apt-get install chromium) or set BROWSER_PATH to its binary."
        ) from None
