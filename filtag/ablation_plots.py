"""Figures of the tag check (:mod:`filtag.tagcheck`) and its offline page.

The functions take the check's variables (see :mod:`filtag.ablation`) and
return :class:`plotly.graph_objects.Figure` objects; :func:`check_page` puts
them on one page (:mod:`filtag.pages`). Nothing here
reads or writes a file.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from filtag import pages
from filtag.ablation import SCOPES, class_order
from filtag.plots import styled

TAGGED = "#1f4e9c"
RANDOM = "#9aa5b1"
SHUFFLED = "#e07b39"


def _layout(fig: go.Figure, title: str, subtitle: str, height: int) -> go.Figure:
    """Give ``fig`` filtag's look (:func:`filtag.plots.styled`), bars and points
    grouped by trace."""
    styled(fig, title, subtitle, height, wrap=130, top=130)
    return fig.update_layout(barmode="group", scattermode="group")


def drop_figure(variables: Mapping[str, Any]) -> go.Figure:
    """Return, per class, the drop of p_c and of log p_c: tagged vs random.

    Args:
        variables: the check's variables (``drop_tagged``, ``drop_random``,
            ``drop_random_draws``, the ``logp_`` ones).

    Returns:
        Two rows (p_c, log p_c); per row a Bar trace of the tagged drops, a
        Bar trace of the random drops (mean over draws, error bars to the
        smallest and largest draw) and a Scatter trace of every draw; classes
        in the table's order (:func:`filtag.ablation.class_order`).
    """
    names = class_order(variables)
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=["drop of p_c", "drop of log p_c"],
    )
    for row, prefix in enumerate(("", "logp_"), start=1):
        tagged = np.array([variables[f"{prefix}drop_tagged"][n] for n in names])
        random = np.array([variables[f"{prefix}drop_random"][n] for n in names])
        draws = [np.asarray(variables[f"{prefix}drop_random_draws"][n]) for n in names]
        low = np.array([d.min() if len(d) else np.nan for d in draws])
        high = np.array([d.max() if len(d) else np.nan for d in draws])
        traces = [
            _bars(names, tagged, "tagged filters", "tagged", row == 1,
                  "tagged filters off, drop"),
            _bars(names, random,
                  "random filters (mean; bars: smallest and largest draw)",
                  "random", row == 1, "random filters off, mean drop",
                  error_y={"type": "data", "symmetric": False,
                           "array": high - random, "arrayminus": random - low}),
            go.Scatter(
                x=[n for n, d in zip(names, draws, strict=True) for _ in d],
                y=np.concatenate(draws) if draws else [],
                mode="markers",
                name="one random draw",
                marker={"color": "#444", "size": 4, "opacity": 0.6},
                offsetgroup="random",
                legendgroup="draws",
                hovertemplate="%{x}: one random draw, drop %{y:.4f}<extra></extra>",
                showlegend=row == 1,
            ),
        ]  # fmt: skip
        for trace in traces:
            fig.add_trace(trace, row=row, col=1)
    fig.update_yaxes(title_text="drop of p_c", row=1, col=1)
    fig.update_yaxes(title_text="drop of log p_c", row=2, col=1)
    fig.update_xaxes(type="category")
    return _layout(
        fig,
        "Switching off each class's tagged filters",
        "Mean over the class's test images of the drop of the network's "
        "probability p_c (top) and of log p_c (bottom); tagged filters vs as many "
        "random untagged ones per layer, sorted by drop_tagged - drop_random.",
        720,
    )


def _bars(
    names: list[str],
    drops: np.ndarray,
    label: str,
    group: str,
    showlegend: bool,
    hover: str,
    **extra: Any,
) -> go.Bar:
    """Return one Bar trace of the drop figure: ``drops`` (one per class in
    ``names``) of the series ``group`` ("tagged" or "random"), which names its
    offset and legend groups and picks its colour."""
    return go.Bar(
        x=names,
        y=drops,
        name=label,
        marker_color={"tagged": TAGGED, "random": RANDOM}[group],
        offsetgroup=group,
        legendgroup=group,
        showlegend=showlegend,
        hovertemplate=f"%{{x}}: {hover} %{{y:.4f}}<extra></extra>",
        **extra,
    )


def hit_baseline_figure(variables: Mapping[str, Any]) -> go.Figure:
    """Return the rule's hit rate (%) against m beside shuffled tags and chance.

    Args:
        variables: the check's variables (``hit_rate``, ``hit_shuffled``,
            ``hit_shuffled_draws``, ``hit_chance``).

    Returns:
        Two columns (all layers, last layer); per column Scatter traces: the
        tags' hit rate, the shuffled tags' mean with a band from the smallest
        to the largest draw, and chance (dashed).
    """
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.05,
        subplot_titles=["tag counts of all layers", "tag counts of the last layer"],
    )
    m_values = sorted(variables["hit_chance"])
    for col, scope in enumerate(SCOPES, start=1):
        draws = variables["hit_shuffled_draws"][scope]
        low = [100 * float(np.min(draws[m])) for m in m_values]
        high = [100 * float(np.max(draws[m])) for m in m_values]
        first = col == 1
        fig.add_trace(
            go.Scatter(
                x=m_values + m_values[::-1],
                y=high + low[::-1],
                mode="lines",
                fill="toself",
                fillcolor="rgba(224, 123, 57, 0.2)",
                line={"width": 0},
                hoverinfo="skip",
                name="shuffled tags: smallest to largest draw",
                legendgroup="band",
                showlegend=first,
            ),
            row=1,
            col=col,
        )
        for label, rates, style in (
            ("tags", variables["hit_rate"][scope], {"color": TAGGED}),
            ("shuffled tags (mean)", variables["hit_shuffled"][scope],
             {"color": SHUFFLED}),
            ("chance (m / classes)", variables["hit_chance"],
             {"color": "#666", "dash": "dash"}),
        ):  # fmt: skip
            fig.add_trace(
                go.Scatter(
                    x=m_values,
                    y=[100 * rates[m] for m in m_values],
                    mode="lines+markers",
                    name=label,
                    line=style,
                    legendgroup=label,
                    showlegend=first,
                    hovertemplate=f"{label}, m = %{{x}}: %{{y:.1f}} %<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="m (first m classes of the tag ranking)",
                     tickvals=m_values)  # fmt: skip
    fig.update_yaxes(title_text="hit rate (%)", range=[-3, 103], col=1)
    return _layout(
        fig,
        "Hit rates beside their baselines",
        "A hit: the network's top-1 class is among the first m classes ranked by "
        "the tags of the image's most active filters. Shuffled tags: the same tags "
        "with the class labels permuted.",
        460,
    )


def specificity_figure(
    n_tags: Sequence[np.ndarray],
    entropy: Sequence[np.ndarray],
    layer_names: Sequence[str],
) -> go.Figure:
    """Return the entropy of the filters' class activations by their number of tags.

    Args:
        n_tags: per layer, int (filters,): the filters' tags under the rule.
        entropy: per layer, float (filters,): their normalised entropy.
        layer_names: the layers' names.

    Returns:
        One Box trace per layer: x = number of tags, y = entropy.
    """
    fig = go.Figure()
    for name, tags, values in zip(layer_names, n_tags, entropy, strict=True):
        fig.add_trace(
            go.Box(
                x=np.asarray(tags),
                y=np.asarray(values),
                name=name,
                boxpoints=False,
                hovertemplate=f"{html.escape(name)}: %{{x}} tags<extra></extra>",
            )
        )
    fig.update_layout(boxmode="group")
    fig.update_xaxes(title_text="tags of the filter", dtick=1)
    fig.update_yaxes(title_text="normalised entropy")
    return _layout(
        fig,
        "Specificity of the filters",
        "Normalised entropy of each filter's step-1 class activations (0: one "
        "class only activates it; 1: every class alike), by its number of tags.",
        460,
    )


def check_page(
    variables: Mapping[str, Any], layer_names: Sequence[str], summary: str
) -> tuple[str, str]:
    """Return the check's page, (title, HTML body): the drops, the hit rates, the
    specificity.

    Args:
        variables: the check's variables, ``meta`` included.
        layer_names: step 1's selected layers.
        summary: the check's summary line.
    """
    meta = variables["meta"]
    intro = [
        f"Network {meta['network']}, rule {meta['kind']} = {meta['value']}: for "
        "each class, the filters of "
        f"{', '.join(meta['layers'])} that the rule tags with the class are switched "
        "off (their channels of the layer output multiplied by 0), and the "
        "network's probability p_c of the class is measured again on the class's "
        f"test images ({meta['images_read']} test images in all); the same with as "
        f"many random untagged filters per layer ({meta['random_draws']} draws).",
        "How to read it: tags that matter make the tagged bars clearly higher than "
        "the random ones, above the largest random draw. The log p_c row shows "
        "drops that a confident network's p_c near 1 hides.",
        summary,
    ]
    figures = [
        drop_figure(variables),
        hit_baseline_figure(variables),
        specificity_figure(
            variables["filter_tags"], variables["filter_entropy"], layer_names
        ),
    ]
    return (
        f"Tag check of {meta['network']}, {meta['kind']} = {meta['value']}",
        pages.paragraphs(intro) + "".join(map(pages.figure_html, figures)),
    )
