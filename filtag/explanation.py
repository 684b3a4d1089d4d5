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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np
from tabulate import tabulate

from filtag import evaluation, overlays, pages
from filtag.artifacts import load_step_vars, load_vars
from filtag.cards import card_id
from filtag.labels import display
from filtag.text import printable
from filtag.variants import Variant

#: The classes ranked first by the tags whose active filters the page groups
#: and sums (the network's class too, when it is further down).
GROUPS = 3

#: The width, in pixels, a group's summed map aims at.
SUMMED = 224


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


def image_html(
    e: Explanation,
    rule: tuple[str, int],
    image_bytes: bytes,
    fires: str = "",
    cards: str | None = None,
) -> str:
    """Return a standalone page explaining one image, titled by its file name.

    The page opens with the image and the verdicts (hit or miss at m = 1, for
    the tags of all layers and of the last layer), then where the active
    filters fire (``fires``), the network's top-5, the classes ranked by the
    tags (bars), and the active filters of each layer with their tags; the
    network's class is highlighted throughout.

    Args:
        e: the explanation.
        rule: ("k" or "q", value).
        image_bytes: the image file's bytes (embedded in the page).
        fires: the section of the filters' maps (:attr:`WhereItFires.html`);
            "": none.
        cards: the address of a tag page (relative to this page) whose cards
            each active filter links to; None: no links.

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
        + fires
        + "<h2>The network's top-5</h2>"
        + _top5_table(e)
        + "<h2>Classes ranked by the tags of the active filters</h2>"
        + _ranking_table(e)
        + "<h2>Active filters per layer (most active first) and their tags</h2>"
        + _layers_table(e, cards)
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


def _layers_table(e: Explanation, cards: str | None = None) -> str:
    """Return each layer's active filters and tags, the network's class marked.

    With ``cards`` (a tag page's address), each filter links to its card.
    """
    network = e.top5[0][0]

    def tag(name: str) -> str:
        text = html.escape(display(name))
        return f"<mark>{text}</mark>" if name == network else text

    def number(layer: str, f: int) -> str:
        if cards is None:
            return str(f)
        return f'<a href="{html.escape(card_href(cards, layer, f))}">{f}</a>'

    rows = [
        [html.escape(layer), number(layer, f), f"{act:.3f}",
         ", ".join(map(tag, tags)) or "-"]
        for layer, filters in e.layers
        for f, act, tags in filters
    ]  # fmt: skip
    headers = ["layer", "filter", "activation", "tags"]
    return pages.table(headers, rows, left=(0, 3))


# ----------------------------------------------------------- where it fires


@dataclass(frozen=True)
class FilterMap:
    """An active filter's feature map for the explained image.

    Attributes:
        layer: the layer's name.
        filter: the filter's index.
        activation: its activation (step 1's value for this image).
        tags: its class tags under the rule.
        values: float32 (h, w), in [0, 1]: the map scaled as step 1 scales
            it, divided by its own highest value.
    """

    layer: str
    filter: int
    activation: float
    tags: tuple[str, ...]
    values: np.ndarray


@dataclass(frozen=True)
class MapGroup:
    """The active filters tagged with one class, or the others.

    Attributes:
        name: the class; None: the active filters in no other group.
        rank: the class's place in the ranking of all layers (1 = first);
            None when the class has no tag or for the others.
        maps: the group's filters, the deepest layer first, in a layer the
            most active first.
    """

    name: str | None
    rank: int | None
    maps: tuple[FilterMap, ...]


@dataclass(frozen=True)
class WhereItFires:
    """Where the active filters fire: the page's section and the summed maps.

    Attributes:
        html: the section for :func:`image_html`.
        summed: {class name: JPEG of the image with the summed map of its
            group}, for the classes the section groups by.
    """

    html: str
    summed: dict[str, bytes] = field(default_factory=dict)


def filter_maps(e: Explanation, outputs: Mapping[str, np.ndarray]) -> list[FilterMap]:
    """Return the maps of the image's active filters, in layer order.

    Args:
        e: the explanation.
        outputs: {layer name: float (h, w, filters)}: each layer's output for
            the image (:meth:`filtag.networks.Network.feature_maps`), at least
            the layers with active filters.

    Returns:
        One :class:`FilterMap` per active filter, as ``e.layers`` lists them.
    """
    maps = []
    for layer, filters in e.layers:
        if not filters:
            continue
        scaled = overlays.scale_layer(np.asarray(outputs[layer])[None])[0]
        maps += [
            FilterMap(layer, f, act, tuple(tags), overlays.normalised(scaled[..., f]))
            for f, act, tags in filters
        ]
    return maps


def map_groups(
    e: Explanation, maps: Sequence[FilterMap], groups: int = GROUPS
) -> list[MapGroup]:
    """Group the active filters by class tag.

    Args:
        e: the explanation.
        maps: its active filters' maps (:func:`filter_maps`).
        groups: the classes ranked first by the tags of all layers that get a
            group each.

    Returns:
        A group per class ranked first (at most ``groups``), then one for the
        network's class when it is not among them (empty when no active
        filter carries it), then the other active filters (when any); in a
        group the deepest layer's filters come first (the most specific).
    """
    depth = {layer: a for a, (layer, _) in enumerate(e.layers)}
    maps = sorted(maps, key=lambda m: -depth[m.layer])  # stable: most active first
    ranks = {name: rank for rank, (name, _) in enumerate(e.ranking, start=1)}
    names = [name for name, _ in e.ranking[:groups]]
    network = e.top5[0][0]
    if network not in names:
        names.append(network)
    result = [
        MapGroup(name, ranks.get(name), tuple(m for m in maps if name in m.tags))
        for name in names
    ]
    grouped = {(m.layer, m.filter) for group in result for m in group.maps}
    others = tuple(m for m in maps if (m.layer, m.filter) not in grouped)
    return result + ([MapGroup(None, None, others)] if others else [])


def summed_map(maps: Sequence[FilterMap], size: tuple[int, int]) -> np.ndarray:
    """Return the sum of the maps, each upsampled to ``size``, scaled into [0, 1].

    Returns:
        float32 (height, width); zeros without maps.
    """
    total = np.zeros(size, np.float32)
    for m in maps:
        total += overlays.upsampled(m.values, size)
    return overlays.normalised(total)


def card_href(cards: str, layer: str, filter_index: int) -> str:
    """Return the address of a filter's card on the tag page at ``cards``."""
    return f"{cards}#{quote(card_id(layer, filter_index), safe='')}"


def where_it_fires(
    e: Explanation,
    image: np.ndarray,
    outputs: Mapping[str, np.ndarray],
    cards: str | None = None,
) -> WhereItFires:
    """Return the section of the page that shows where the active filters fire.

    Per group of :func:`map_groups`: the summed map over the image (for a
    class), then each filter's map over the image with its layer, index and
    activation, linked to its card when ``cards`` is given.

    Args:
        e: the explanation.
        image: uint8 (height, width, channels): the image as the network
            sees it.
        outputs: {layer name: float (h, w, filters)}: the layers' outputs for
            the image (those with active filters).
        cards: the address of a tag page (relative to the page); None: no
            links.

    Returns:
        The section and the summed maps' JPEGs.
    """
    height, width = image.shape[:2]
    tile = overlays.picture_size(height, width)
    large = overlays.picture_size(height, width, SUMMED)
    maps = filter_maps(e, outputs)
    pictures = {
        (m.layer, m.filter): overlays.jpeg(overlays.overlay(image, m.values, tile))
        for m in maps
    }
    network = e.top5[0][0]
    summed: dict[str, bytes] = {}
    parts = [
        "<h2>Where the active filters fire</h2>",
        pages.paragraphs(
            [
                "Each picture lays an active filter's feature map over the image: "
                "its layer's output for the image scaled into [0, 1] as step 1 "
                "scales it, at full colour where the filter fires most, upsampled "
                "from the layer's positions to the image. The filters are grouped "
                "by their class tags, the classes in the order the tags rank "
                "them; a group's first picture sums its filters' maps."
                + (" Click a filter for its card: its exemplars." if cards else "")
            ]
        ),
        overlays.legend_html(),
    ]
    for group in map_groups(e, maps):
        total = ""
        if group.name is not None and group.maps:
            picture = overlays.jpeg(
                overlays.overlay(image, summed_map(group.maps, large), large)
            )
            summed[group.name] = picture
            total = (
                f'<figure class="summed">{pages.image_tag(picture, large[1], "sum")}'
                f"<figcaption>the {len(group.maps)} maps summed</figcaption></figure>"
            )
        figures = "".join(
            _filter_figure(m, pictures[m.layer, m.filter], tile[1], cards)
            for m in group.maps
        )
        parts.append(
            f'<div class="group"><h3>{_group_title(group, network)}</h3>'
            f'<div class="group-body">{total}<div class="maps">{figures}</div></div>'
            "</div>"
        )
    return WhereItFires("\n".join(parts), summed)


def _group_title(group: MapGroup, network: str) -> str:
    """Return a group's heading, e.g. "these filters, tagged Sneaker, fire here"."""
    if group.name is None:
        return (
            f"The other {len(group.maps)} active filters (tagged with lower-ranked "
            "classes, or not tagged)"
        )
    name = html.escape(display(group.name))
    if group.name == network:
        name = f"<mark>{name}</mark> (the network's class)"
    if not group.maps:
        return f"No active filter is tagged {name}"
    rank = f"rank {group.rank} of the tags, " if group.rank else ""
    count = len(group.maps)
    return (
        f"These filters, tagged {name}, fire here ({rank}{count} active "
        f"filter{'s' if count != 1 else ''})"
    )


def _filter_figure(m: FilterMap, picture: bytes, width: int, cards: str | None) -> str:
    """Return one filter's map over the image, captioned, linked to its card."""
    layer = printable(m.layer)
    alt = f"{layer} filter {m.filter}"
    image = pages.image_tag(picture, width, alt)
    if cards is not None:
        image = (
            f'<a href="{html.escape(card_href(cards, m.layer, m.filter))}">{image}</a>'
        )
    tags = ", ".join(display(t) for t in m.tags) or "no tag"
    return (
        f'<figure title="{html.escape(f"{alt}: tagged {tags}")}">{image}'
        f"<figcaption>{html.escape(layer)} #{m.filter}<br>{m.activation:.3f}"
        "</figcaption></figure>"
    )


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
