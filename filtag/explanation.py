"""Explanations of single images: which active filters carried which tags.

For one rule (k or q, one value), an image's explanation holds the network's
top-5, the ranking of the classes by the tags of the image's active filters
(all layers and the last layer, exactly as step 3 counts them), and per layer
the active filters with their activation and their tags. The functions here
take arrays and return data or text; the scripts write the files.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass

import numpy as np
from tabulate import tabulate

from filtag import evaluation
from filtag.labels import display


@dataclass
class Explanation:
    """One image's explanation under one rule.

    Attributes:
        image: the image's path (as given, or relative to the images folder).
        top5: the network's 5 most probable classes, (name, probability).
        ranking: (class name, tag count) pairs, all layers, best first.
        ranking_last: the same, last layer only.
        layers: per layer, (layer name, [(filter index, activation, tags)]) for
            the active filters, most active first.
    """

    image: str
    top5: list[tuple[str, float]]
    ranking: list[tuple[str, int]]
    ranking_last: list[tuple[str, int]]
    layers: list[tuple[str, list[tuple[int, float, list[str]]]]]


def explain_batch(
    images: list[str],
    layer_acts: list[np.ndarray],
    outputs: np.ndarray,
    layer_tags: list[list[list[str]]],
    rule: tuple[str, int],
    classes: list[str],
    output_names: list[str],
    layer_names: list[str],
) -> list[Explanation]:
    """Explain a batch of images under one rule.

    Args:
        images: the images' names, length n.
        layer_acts: per layer, float64 (n, filters): the images' activations.
        outputs: float (n, n_outputs): the network's outputs.
        layer_tags: ``filTags[value]`` of step 2: per layer, per filter, tags.
        rule: ("k" or "q", value).
        classes: the class names, in class-index order.
        output_names: the name of each network output.
        layer_names: the names of the layers.

    Returns:
        One :class:`Explanation` per image.
    """
    index = {name: i for i, name in enumerate(classes)}
    matrices = [evaluation.tag_matrix(t, index) for t in layer_tags]
    active = evaluation.active_filters(layer_acts, *rule)
    counts_all, counts_last = evaluation.count_tags(active, matrices)
    rankings = evaluation.rankings(counts_all, classes)
    rankings_last = evaluation.rankings(counts_last, classes)
    top5 = evaluation.top_predictions(outputs, output_names)
    return [
        Explanation(
            image,
            top5[i],
            rankings[i],
            rankings_last[i],
            [
                (name, _active_filters(acts[i], mask[i], tags))
                for name, acts, mask, tags in zip(
                    layer_names, layer_acts, active, layer_tags, strict=True
                )
            ],
        )
        for i, image in enumerate(images)
    ]


def _active_filters(
    acts: np.ndarray, mask: np.ndarray, tags: list[list[str]]
) -> list[tuple[int, float, list[str]]]:
    """Return (filter, activation, tags) of the active filters, most active first."""
    chosen = np.flatnonzero(mask)
    chosen = chosen[np.argsort(-acts[chosen], kind="stable")]
    return [(int(f), float(acts[f]), list(tags[f])) for f in chosen]


def _pairs(pairs: list[tuple[str, float]], n: int = 5, digits: int = 0) -> str:
    """Format the first ``n`` (name, number) pairs as 'name:number, ...'."""
    shown = ", ".join(f"{name}:{value:.{digits}f}" for name, value in pairs[:n])
    return shown + (", ..." if len(pairs) > n else "")


def class_table(explanations: list[Explanation], rule: tuple[str, int]) -> str:
    """Return a table: per image, the prediction beside its tag rankings.

    Args:
        explanations: the images of one class.
        rule: the rule the rankings used, for the title.
    """
    rows = [
        [
            e.image,
            f"{display(e.top5[0][0])} ({100 * e.top5[0][1]:.1f} %)",
            _pairs(e.ranking),
            _pairs(e.ranking_last),
        ]
        for e in explanations
    ]
    headers = ["image", "network top-1", "tag counts, all layers", "last layer"]
    title = f"Tag counts of the active filters, {rule[0]} = {rule[1]}"
    return f"{title}\n{tabulate(rows, headers, tablefmt='github')}\n"


def image_text(e: Explanation, rule: tuple[str, int], tablefmt: str = "github") -> str:
    """Return one image's explanation as text tables (or HTML with tablefmt='html')."""
    top5 = tabulate(
        [[display(name), f"{100 * p:.2f} %"] for name, p in e.top5],
        ["network top-5", "probability"],
        tablefmt=tablefmt,
    )
    ranking = tabulate(
        [[name, count, dict(e.ranking_last).get(name, 0)] for name, count in e.ranking],
        ["class", "tag count, all layers", "last layer"],
        tablefmt=tablefmt,
    )
    layers = tabulate(
        [
            [layer, filt, f"{act:.3f}", ", ".join(tags) or "-"]
            for layer, filters in e.layers
            for filt, act, tags in filters
        ],
        ["layer", "filter", "activation", "tags"],
        tablefmt=tablefmt,
    )
    return "\n\n".join(
        [
            f"Image {e.image}, {rule[0]} = {rule[1]}",
            top5,
            "Classes ranked by the tags of the active filters",
            ranking,
            "Active filters per layer (most active first) and their tags",
            layers,
        ]
    )


def image_html(e: Explanation, rule: tuple[str, int], image_bytes: bytes) -> str:
    """Return a standalone HTML page explaining one image (the image embedded)."""
    picture = base64.b64encode(image_bytes).decode("ascii")
    tables = image_text(e, rule, tablefmt="html").split("\n\n")
    body = "".join(
        f"<h2>{html.escape(part)}</h2>" if not part.startswith("<") else part
        for part in tables[1:]
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>filtag: {html.escape(e.image)}</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 8px}"
        "img{width:224px;image-rendering:pixelated}</style></head><body>"
        f"<h1>{html.escape(tables[0])}</h1>"
        f"<img alt='the image' src='data:image;base64,{picture}'>"
        f"{body}</body></html>\n"
    )
