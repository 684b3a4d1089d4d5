"""Explanations of single images: which active filters carried which tags.

For one rule (k or q, one value), an image's explanation holds the network's
top-5, the ranking of the classes by the tags of the image's active filters
(all layers and the last layer, exactly as step 3 counts them), and per layer
the active filters with their activation and their tags. A *verdict* says
whether the tags agree with the network on an image: a hit at m = 1 when the
class the tags rank first is the network's top-1 class, as step 4 counts it.
The functions here take arrays (or read step 3's files, :func:`step3_verdicts`)
and return data, text or a page; the scripts write the files.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tabulate import tabulate

from filtag import evaluation, pages
from filtag.artifacts import load_step_vars, load_vars
from filtag.labels import display
from filtag.variants import Variant


@dataclass(frozen=True)
class Verdict:
    """Whether the filter tags agree with the network on one image, at m = 1.

    Attributes:
        image: the image's name (step 3's: ``<class folder>/<file>``).
        network: the network's top-1 class.
        ranking: (class, tag count) of the classes ranked by the tags of the
            image's active filters, best first (counts above 0; ties in class
            order, as step 3 ranks them).
    """

    image: str
    network: str
    ranking: tuple[tuple[str, int], ...]

    @property
    def first(self) -> str | None:
        """The class the tags rank first; None when no active filter is tagged."""
        return self.ranking[0][0] if self.ranking else None

    @property
    def hit(self) -> bool:
        """True when the tags rank the network's class first."""
        return self.first == self.network

    @property
    def rank(self) -> int | None:
        """The network's class's place in the ranking (1 = first); None: absent."""
        places = (
            i for i, (name, _) in enumerate(self.ranking, 1) if name == self.network
        )
        return next(places, None)

    def sentence(self) -> str:
        """Return what the verdict means, e.g. "the tags rank ... first"."""
        network = f"the network's class, {display(self.network)}"
        if self.hit:
            return f"the tags rank {network}, first."
        if self.first is None:
            return "no active filter carries a tag."
        first = f"the tags rank {display(self.first)} first"
        if self.rank is None:
            return f"{first}; no active filter carries {network}."
        top, own = self.ranking[0][1], self.ranking[self.rank - 1][1]
        tie = f", tied at {own} tags (ties go to the class listed first)"
        return f"{first} and {network}, at rank {self.rank}{tie if own == top else ''}."

    def line(self, scope: str) -> str:
        """Return the verdict as one line, e.g. ``Hit at m = 1 (all layers): ...``."""
        word = "Hit" if self.hit else "Miss"
        return f"{word} at m = 1 ({scope}): {self.sentence()}"


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

    def verdict(self, last_layer: bool = False) -> Verdict:
        """Return the verdict of the ranking of all layers (or the last layer)."""
        ranking = self.ranking_last if last_layer else self.ranking
        return Verdict(self.image, self.top5[0][0], tuple(ranking))

    def verdicts(self) -> str:
        """Return both verdicts in words: ``all layers: hit, last layer: miss``."""
        words = ["miss", "hit"]
        return (
            f"all layers: {words[self.verdict().hit]}, "
            f"last layer: {words[self.verdict(last_layer=True).hit]}"
        )


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
    """Return one image's explanation as text: the verdicts, then three tables.

    Args:
        e: the explanation.
        rule: ("k" or "q", value).
        tablefmt: a tabulate format.
    """
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
            f"Image {e.image}, {rule[0]} = {rule[1]}\n"
            f"{e.verdict().line('all layers')}\n"
            f"{e.verdict(last_layer=True).line('last layer')}",
            top5,
            "Classes ranked by the tags of the active filters",
            ranking,
            "Active filters per layer (most active first) and their tags",
            layers,
        ]
    )


def image_html(e: Explanation, rule: tuple[str, int], image_bytes: bytes) -> str:
    """Return a standalone page explaining one image, titled by its file name.

    The page opens with the image and the verdicts (hit or miss at m = 1, for
    the tags of all layers and of the last layer), then the network's top-5,
    the classes ranked by the tags (bars), and the active filters of each
    layer with their tags; the network's class is highlighted throughout.

    Args:
        e: the explanation.
        rule: ("k" or "q", value).
        image_bytes: the image file's bytes (embedded in the page).

    Returns:
        The page as text.
    """
    from filtag.plots import rule_text  # plotly only for pages

    name = Path(e.image).name
    network, probability = e.top5[0]
    verdicts = "".join(
        f'<p class="verdict">{_badge(v.hit)} at m = 1, {scope}: '
        f"{html.escape(v.sentence())}</p>"
        for v, scope in (
            (e.verdict(), "all layers"),
            (e.verdict(last_layer=True), "last layer only"),
        )
    )
    facts = [
        f"file: {short_name(e.image)}",
        f"the network's class: {display(network)} ({100 * probability:.1f} %)",
        f"active filters: {rule_text(*rule)}"
        + (
            " (in a layer with fewer filters: those above its mean)"
            if rule[0] == "k" and rule[1]
            else ""
        ),
        "a hit: the class that the tags of the active filters rank first is "
        "the network's class",
    ]
    body = (
        f'<div class="explained">{pages.image_tag(image_bytes, 224, name)}'
        f'<div>{verdicts}<ul class="facts">'
        + "".join(f"<li>{html.escape(f)}</li>" for f in facts)
        + "</ul></div></div>"
        + "<h2>The network's top-5</h2>"
        + _top5_table(e)
        + "<h2>Classes ranked by the tags of the active filters</h2>"
        + _ranking_table(e)
        + "<h2>Active filters per layer (most active first) and their tags</h2>"
        + _layers_table(e)
    )
    return pages.page(name, body)


def short_name(image: str) -> str:
    """Return an image's file name with its folder: ``Coat/0003.png``."""
    path = Path(image)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def _badge(hit: bool) -> str:
    """Return a green "hit" or a red "miss" label."""
    return '<span class="hit">hit</span>' if hit else '<span class="miss">miss</span>'


def _top5_table(e: Explanation) -> str:
    """Return the network's top-5 as an HTML table, its top-1 highlighted."""
    rows = [[html.escape(display(name)), f"{100 * p:.2f} %"] for name, p in e.top5]
    return pages.table(["class", "probability"], rows, ["network"], left=(0,))


def _ranking_table(e: Explanation) -> str:
    """Return the tag ranking as an HTML table with bars, the network's class marked."""
    network = e.top5[0][0]
    last = dict(e.ranking_last)
    most = max((count for _, count in e.ranking), default=1)
    rows = [
        [
            str(rank),
            html.escape(display(name)),
            f'<span class="bar" style="width:{120 * count // most}px"></span>{count}',
            str(last.get(name, 0)),
        ]
        for rank, (name, count) in enumerate(e.ranking, start=1)
    ]
    marked = ["network" if name == network else "" for name, _ in e.ranking]
    headers = ["rank", "class", "tag count, all layers", "last layer"]
    return pages.table(headers, rows, marked, left=(1,))


def _layers_table(e: Explanation) -> str:
    """Return each layer's active filters and tags, the network's class marked."""
    network = e.top5[0][0]

    def tag(name: str) -> str:
        text = html.escape(display(name))
        return f"<mark>{text}</mark>" if name == network else text

    rows = [
        [html.escape(layer), str(f), f"{act:.3f}", ", ".join(map(tag, tags)) or "-"]
        for layer, filters in e.layers
        for f, act, tags in filters
    ]
    headers = ["layer", "filter", "activation", "tags"]
    return pages.table(headers, rows, left=(0, 3))


# ------------------------------------------------------------ step 3's verdicts


def step3_verdicts(
    eval_file: str | Path, variant: Variant, value: int
) -> list[Verdict]:
    """Return the verdict of every image of a step-3 run under one rule.

    Args:
        eval_file: step 3's index ``-vars.pkl`` (its class files beside it).
        variant: the ranking's variant (k or q, all layers or the last layer).
        value: the k or q value (one of step 3's).

    Returns:
        One :class:`Verdict` per evaluated image, class by class, in step 3's
        order.

    Raises:
        ArtifactError: a file is missing or not step 3's.
        KeyError: ``value`` is not one of step 3's values.
    """
    index = Path(eval_file)
    v3 = load_step_vars(index, "E", "--eval-file", ["eval_files"])
    verdicts = []
    for name in v3["eval_files"]:
        c = load_vars(index.parent / name)
        (images,) = c["class_images_dict"].values()
        rankings = c[variant.ranking_var][value]
        for image, top5, ranking in zip(images, c["y"], rankings, strict=True):
            verdicts.append(Verdict(image, top5[0][0], tuple(map(tuple, ranking))))
    return verdicts


def examples(
    verdicts: Sequence[Verdict], hits: int = 2, misses: int = 1
) -> list[Verdict]:
    """Return the first ``hits`` hits and ``misses`` misses, each of another class.

    An image's class is its folder (the part of its name before ``/``); fewer
    are returned when there are not enough hits or misses.
    """
    chosen: list[Verdict] = []
    classes: set[str] = set()
    for want, count in ((True, hits), (False, misses)):
        for v in verdicts:
            folder = v.image.split("/")[0]
            if count and v.hit == want and folder not in classes:
                chosen.append(v)
                classes.add(folder)
                count -= 1
    return chosen
