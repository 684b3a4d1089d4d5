"""Filter cards: what each filter of the tag page's layers stands for.

A card shows one filter: its tags (step 2, the page's rule), its activation for
every class (step 1's ``filter_act_<i>``, the numbers the tags come from) and
its exemplars (step 1's ``exemplar_images``: the train images that activate it
most, best first) with the filter's feature map laid over each
(:mod:`filtag.overlays`). The pictures are made when the page is made: per
layer, a forward pass of the network over the exemplars, in runs of at most
:data:`IMAGES_AT_ONCE` images (:meth:`filtag.networks.Network.feature_maps`);
each filter's exemplars go side by side into one JPEG in a folder beside the
page, which the page loads lazily. Without step 1's file the cards show the
tags; without the images, the tags and activations, and the page says why.

The page finds cards with a search box (a class: the filters that carry it;
``layer:filter``: that card) and opens a card when a cell of a tag map is
clicked: :data:`SCRIPT`, plain JavaScript, offline.
"""

from __future__ import annotations

import html
import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from filtag import overlays
from filtag.artifacts import atomic_write_bytes, load_step_vars
from filtag.errors import ArtifactError
from filtag.labels import display
from filtag.text import printable

logger = logging.getLogger(__name__)

#: A card lists the classes of highest activation, and every tagged class.
CARD_CLASSES = 10

#: Above this many cards a page shows a card's activations and exemplars only
#: when the card comes near the screen (:func:`card_html`, ``lazy``).
LAZY_CARDS = 500

#: Exemplar images held at once when drawing (their pictures and maps): each
#: image goes through the network once per layer unless the layer's exemplars
#: are more (bounds the memory).
IMAGES_AT_ONCE = 1024

#: Images per forward pass when drawing exemplars.
BATCH_SIZE = 32


@dataclass(frozen=True)
class Step1Data:
    """What the cards read from step 1's file.

    Attributes:
        class_acts: per layer, float64 (classes, filters): ``filter_act_<i>``
            stacked in class order.
        exemplar_images: per layer, per filter, its exemplars (paths relative
            to ``images_dir``), best first; empty lists when step 1 kept none.
        exemplar_values: per layer, float32 (filters, n): their values.
        images_dir: the folder step 1 read.
    """

    class_acts: list[np.ndarray]
    exemplar_images: list[list[list[str]]]
    exemplar_values: list[np.ndarray]
    images_dir: Path


@dataclass(frozen=True)
class FilterCard:
    """One filter's card.

    Attributes:
        layer: the layer's name.
        filter: the filter's index in its layer.
        tags: its class tags under the page's rule.
        activations: float64 (classes,), step 1's ``filter_act_<i>[a][filter]``
            of each class; None without step 1's file.
        exemplars: its exemplars (paths relative to the images folder).
        values: float32 (len(exemplars),): their values.
        picture: the address, relative to the page, of the JPEG of its
            exemplars with its map over each; None: no picture.
        picture_size: (height, width) of one exemplar in the picture.
    """

    layer: str
    filter: int
    tags: tuple[str, ...]
    activations: np.ndarray | None = None
    exemplars: tuple[str, ...] = ()
    values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    picture: str | None = None
    picture_size: tuple[int, int] = (0, 0)

    @property
    def anchor(self) -> str:
        """The card's element id on the page (:func:`card_id`)."""
        return card_id(self.layer, self.filter)


def card_id(layer: str, filter_index: int) -> str:
    """Return the element id of a filter's card, ``<layer>-<filter>``: ``conv4-53``."""
    return f"{printable(layer)}-{filter_index}"


# ------------------------------------------------------------------ step 1's data


def read_step1(meta: Any, filtags_file: Path, n_classes: int) -> Step1Data | str:
    """Return step 1's class activations and exemplars, or why they are not there.

    Args:
        meta: the step-2 file's ``meta`` (None for a file of the original
            FilTag scripts).
        filtags_file: the step-2 file (for messages).
        n_classes: its classes.

    Returns:
        The data, or a sentence for the page saying why the cards show the
        tags only.

    Raises:
        ArtifactError: step 1's file is there but broken, or of another run.
    """
    name = meta.get("activations_file") if isinstance(meta, dict) else None
    if not name:
        return (
            f"{filtags_file.name} does not name step 1's file (a file of the "
            "original FilTag scripts): the cards show the tags only."
        )
    path = Path(name)
    if not path.is_file():
        return (
            f"Step 1's file {path} (named in {filtags_file.name}) is not there: the "
            "cards show the tags only; put it back to see each filter's class "
            "activations and exemplars."
        )
    v1 = load_step_vars(path, "QFA", "step 1's file", ["labels_id"])
    classes = sorted(v1["labels_id"])
    missing = [i for i in classes if f"filter_act_{i}" not in v1]
    if len(classes) != n_classes or missing:
        raise ArtifactError(
            f"step 1's file {path} has {len(classes)} classes ({len(missing)} "
            f"without filter_act_<i>) but {filtags_file} has {n_classes}; the "
            "files are from different runs: rerun step 2 on that step-1 file."
        )
    n_layers = len(v1[f"filter_act_{classes[0]}"])
    acts = [
        np.stack([np.asarray(v1[f"filter_act_{i}"][a], np.float64) for i in classes])
        for a in range(n_layers)
    ]
    images = v1.get("exemplar_images") or [[[] for _ in a.T] for a in acts]
    values = v1.get("exemplar_values") or [np.zeros((a.shape[1], 0)) for a in acts]
    step1_meta = v1.get("meta") or {}
    return Step1Data(acts, images, values, Path(step1_meta.get("images_dir", ".")))


def images_note(images_dir: Path, paths: Sequence[str]) -> str:
    """Return why the exemplars cannot be drawn from ``images_dir`` ("": they can).

    Args:
        images_dir: the folder of the images.
        paths: the exemplars to draw (relative to it).
    """
    if not paths:
        return "Step 1 kept no exemplars (--exemplars 0): the cards show no images."
    absent = [p for p in paths if not (images_dir / p).is_file()]
    if not absent:
        return ""
    where = (
        f"the folder {images_dir} is not there"
        if not images_dir.is_dir()
        else f"{len(absent)} of {len(paths)} exemplar images are not in {images_dir} "
        f"(e.g. {absent[0]})"
    )
    return (
        f"The cards show tags and activations only: {where}. Pass --images-dir "
        "with the folder step 1 read to see each filter's exemplars."
    )


# -------------------------------------------------------------------- pictures


def draw_exemplars(
    network: Any,
    images_dir: Path,
    layer: str,
    exemplars: Sequence[Sequence[str]],
    folder: Path,
    stem: str,
) -> dict[int, str]:
    """Write, per filter of ``layer``, its exemplars with its map over each, one JPEG.

    The maps are step 1's (:func:`filtag.overlays.scale_layer`), shown at full
    colour at the filter's highest value among its exemplars, so the
    exemplars of one filter compare; an exemplar that cannot be read is grey.

    Args:
        network: the network (:class:`filtag.networks.Network`; only
            ``spec`` and ``feature_maps`` are used).
        images_dir: the folder the exemplar paths are relative to.
        layer: the layer's name.
        exemplars: per filter of the layer, its exemplars, best first.
        folder: where the JPEGs go (made when needed).
        stem: the files' name start, e.g. ``"3"``: ``3-0.jpg``, ``3-1.jpg``, ...

    Returns:
        {filter: file name} of the filters with exemplars.
    """
    from filtag import data

    spec = network.spec
    size = overlays.picture_size(spec.height, spec.width)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[int, str] = {}
    for chunk in _chunks(exemplars):
        uses: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for b in chunk:
            for j, path in enumerate(exemplars[b]):
                uses[path].append((b, j))
        maps: dict[tuple[int, int], np.ndarray] = {}
        images: dict[str, np.ndarray] = {}
        paths = list(uses)
        for first in range(0, len(paths), BATCH_SIZE):
            read = [
                (p, data.load_image(str(images_dir / p), spec))
                for p in paths[first : first + BATCH_SIZE]
            ]
            read = [(p, image) for p, image in read if image is not None]
            if not read:
                continue
            batch = np.stack([image for _, image in read])
            scaled = overlays.scale_layer(network.feature_maps(batch, layer))
            for i, (p, image) in enumerate(read):
                images[p] = overlays.picture(image, size)
                for b, j in uses[p]:
                    maps[b, j] = scaled[i, :, :, b].copy()  # not the whole batch
        for b in chunk:
            peak = max((float(maps[b, j].max()) for j in range(len(exemplars[b]))
                        if (b, j) in maps), default=0.0)  # fmt: skip
            tiles = [
                overlays.overlay(images[p], overlays.normalised(maps[b, j], peak), size)
                if (b, j) in maps
                else np.full((*size, 3), 128, np.uint8)
                for j, p in enumerate(exemplars[b])
            ]
            name = f"{stem}-{b}.jpg"
            atomic_write_bytes(folder / name, [overlays.jpeg(overlays.strip(tiles))])
            written[b] = name
    return written


def _chunks(exemplars: Sequence[Sequence[str]]) -> list[list[int]]:
    """Split the filters with exemplars into runs of at most IMAGES_AT_ONCE images.

    Args:
        exemplars: per filter of a layer, its exemplars (paths).

    Returns:
        Lists of filter indices, in order; together the filters that have
        exemplars. A run holds one filter at least.
    """
    chunks: list[list[int]] = []
    seen: set[str] = set()
    for b, paths in enumerate(exemplars):
        if not paths:
            continue
        if not chunks or len(seen | set(paths)) > IMAGES_AT_ONCE:
            chunks.append([])
            seen = set()
        chunks[-1].append(b)
        seen |= set(paths)
    return chunks


# ----------------------------------------------------------------------- cards


def filter_cards(
    layers_tags: Sequence[Sequence[Sequence[str]]],
    layer_names: Sequence[str],
    shown: Sequence[int],
    step1: Step1Data | None,
    pictures: dict[int, dict[int, str]],
    picture_size: tuple[int, int] = (0, 0),
) -> list[list[FilterCard]]:
    """Return the cards of the shown layers.

    Args:
        layers_tags: per layer, per filter, its tags (the page's rule).
        layer_names: every layer's name.
        shown: the indices of the shown layers.
        step1: step 1's data, or None.
        pictures: {layer index: {filter: address relative to the page}}.
        picture_size: (height, width) of one exemplar in a picture.

    Returns:
        Per shown layer, one card per filter.
    """
    result = []
    for a in shown:
        cards = []
        for b, tags in enumerate(layers_tags[a]):
            extra: dict[str, Any] = {}
            if step1 is not None:
                extra = {
                    "activations": step1.class_acts[a][:, b],
                    "exemplars": tuple(step1.exemplar_images[a][b]),
                    "values": np.asarray(step1.exemplar_values[a][b], np.float32),
                }
            picture = pictures.get(a, {}).get(b)
            if picture is not None:
                extra.update(picture=picture, picture_size=picture_size)
            cards.append(FilterCard(layer_names[a], b, tuple(tags), **extra))
        result.append(cards)
    return result


def featured(cards: Sequence[FilterCard], class_name: str) -> FilterCard | None:
    """Return the card that stands for ``class_name`` best, or None.

    Among the cards tagged with the class: the fewest tags first, then the
    highest activation for the class, then the deepest layer (``cards`` in
    layer order).
    """
    tagged = [(i, c) for i, c in enumerate(cards) if class_name in c.tags]
    if not tagged:
        return None

    def strength(card: FilterCard) -> float:
        if card.activations is None:
            return 0.0
        return float(np.nanmax(card.activations))

    return min(tagged, key=lambda ic: (len(ic[1].tags), -strength(ic[1]), -ic[0]))[1]


# ------------------------------------------------------------------------ HTML


def card_html(
    card: FilterCard, classes: Sequence[str], href: str = "", lazy: bool = False
) -> str:
    """Return one card as HTML.

    Args:
        card: the card.
        classes: the class names, in class-index order (of ``activations``).
        href: a link for the card's heading (e.g. to the card on its tag
            page); "": none.
        lazy: put the activations and exemplars into a ``<template>`` of
            the card, for :data:`SCRIPT` to show when the card comes near the
            screen (pages with many cards stay fast).
    """
    title = f"{html.escape(printable(card.layer))} &middot; filter {card.filter}"
    if href:
        title = f'<a href="{html.escape(href)}">{title}</a>'
    tags = ", ".join(f"<mark>{html.escape(display(t))}</mark>" for t in card.tags)
    head = (
        f"<h3>{title}</h3>"
        f'<p class="card-tags">{"tagged " + tags if tags else "no tag"}</p>'
    )
    detail = ""
    if card.activations is not None:
        detail += _activation_table(card.activations, card.tags, classes)
    if card.picture is not None:
        detail += _exemplars_html(card)
    data_tags = html.escape("\n".join(display(t) for t in card.tags))
    attributes = (
        f'class="card" id="{html.escape(card.anchor)}" '
        f'data-layer="{html.escape(printable(card.layer))}" '
        f'data-filter="{card.filter}" data-tags="{data_tags}"'
    )
    if lazy and detail:
        return f"<div {attributes}>{head}<template>{detail}</template></div>"
    return f"<div {attributes}>{head}{detail}</div>"


def _activation_table(
    acts: np.ndarray, tags: Sequence[str], classes: Sequence[str]
) -> str:
    """Return the filter's activation per class: the highest, and every tagged one."""
    order = np.argsort(-np.nan_to_num(acts, nan=-np.inf), kind="stable")
    tagged = set(tags)
    chosen = [int(i) for i in order[:CARD_CLASSES]]
    chosen += [int(i) for i in order[CARD_CLASSES:] if classes[i] in tagged]
    rows = []
    for i in chosen:
        value = acts[i]
        bar = "" if np.isnan(value) else f'<i style="width:{round(100 * value)}px"></i>'
        number = "n/a" if np.isnan(value) else f"{value:.3f}"
        css = ' class="tagged"' if classes[i] in tagged else ""
        rows.append(
            f"<tr{css}><td>{html.escape(display(classes[i]))}</td>"
            f"<td>{bar}{number}</td></tr>"
        )
    more = len(classes) - len(chosen)
    which = f" (top {len(chosen)} of {len(classes)})" if more else ""
    caption = f"<caption>activation per class{which}</caption>"
    return f'<table class="acts">{caption}{"".join(rows)}</table>'


def _exemplars_html(card: FilterCard) -> str:
    """Return the card's exemplar picture with each exemplar's value under it."""
    height, width = card.picture_size
    n = len(card.exemplars)
    values = "".join(
        f'<span title="{html.escape(printable(path))}">{value:.3f}</span>'
        for path, value in zip(card.exemplars, card.values, strict=True)
    )
    alt = f"the {n} exemplars of {printable(card.layer)} filter {card.filter}"
    return (
        f'<figure class="exemplars"><img src="{html.escape(card.picture or "")}" '
        f'loading="lazy" width="{n * width}" height="{height}" '
        f'alt="{html.escape(alt)}">'
        f'<figcaption style="grid-template-columns:repeat({n},{width}px)">{values}'
        "</figcaption></figure>"
    )


def finder_html(classes: Sequence[str], layer_names: Sequence[str]) -> str:
    """Return the search box (with the class names to choose from) and its results."""
    options = "".join(f'<option value="{html.escape(display(c))}">' for c in classes)
    layers = json.dumps([printable(name) for name in layer_names]).replace(
        "<", "\\u003c"
    )
    return (
        '<form class="finder" id="finder-form">'
        '<label>Find filters: <input id="finder" type="search" list="finder-classes" '
        'placeholder="a class (which filters stand for it?) or layer:filter" '
        'autocomplete="off"></label> <span id="finder-status"></span>'
        f'<datalist id="finder-classes">{options}</datalist>'
        '<div id="finder-found"></div></form>'
        f'<script type="application/json" id="finder-layers">{layers}</script>'
    )


def cards_html(
    cards: Sequence[Sequence[FilterCard]],
    classes: Sequence[str],
    rule: str,
    notes: Sequence[str],
) -> str:
    """Return the cards section of the tag page: what a card shows, notes, the cards.

    Args:
        cards: per shown layer, its cards (:func:`filter_cards`).
        classes: the class names, in class-index order.
        rule: the page's rule in words (the tags' rule).
        notes: sentences on what the cards cannot show, and why.
    """
    n = max((len(c.exemplars) for layer in cards for c in layer), default=0)
    lazy = sum(map(len, cards)) > LAZY_CARDS
    intro = (
        f"One card per filter of the shown layers: its tags ({rule}); its "
        "activation for each class (step 1: the mean, over the class's train "
        "images, of the filter's mean activation scaled into [0, 1] per image "
        "and layer; the tags come from these numbers; tagged classes "
        "highlighted)"
        + (
            f"; and the {n} train images that activate it most, best first, "
            "with their values and its feature map laid over each (full colour "
            "at the filter's highest value among them)."
            if n
            else "."
        )
        + " Click a cell of a tag map above, or search, to open a card."
    )
    body = [
        '<h2 id="cards">Filter cards</h2>',
        f"<p>{html.escape(intro)}</p>",
        *(f'<p class="note">{html.escape(note)}</p>' for note in notes),
    ]
    if any(c.picture for layer in cards for c in layer):
        body.append(overlays.legend_html())
    for layer_cards in cards:
        if not layer_cards:
            continue
        name = html.escape(printable(layer_cards[0].layer))
        body.append(
            f'<section class="layer-cards"><h3>Layer {name}: '
            f'{len(layer_cards)} filters</h3><div class="cards">'
            + "".join(card_html(c, classes, lazy=lazy) for c in layer_cards)
            + "</div></section>"
        )
    return "\n".join(body)


def tag_map_html(figure: str, layer: str) -> str:
    """Wrap a tag map's figure so that a click on it opens the filter's card."""
    layer = html.escape(printable(layer))
    return f'<div class="tagmap" data-layer="{layer}">{figure}</div>'


#: The page's script: the search box, the tag maps' clicks, ``#layer-filter`` links.
SCRIPT = r"""
(function () {
  "use strict";
  var form = document.getElementById("finder-form");
  if (!form) { return; }
  var input = document.getElementById("finder");
  var status = document.getElementById("finder-status");
  var found = document.getElementById("finder-found");
  var layers = JSON.parse(document.getElementById("finder-layers").textContent);
  var cards = Array.prototype.slice.call(document.querySelectorAll(".card"));
  var sections = Array.prototype.slice.call(
    document.querySelectorAll(".layer-cards"));

  function tagsOf(card) {
    return card.dataset.tags ? card.dataset.tags.split("\n") : [];
  }
  function showOnly(keep) {
    cards.forEach(function (card) {
      card.hidden = !keep(card);
      card.classList.remove("focus");
    });
    sections.forEach(function (section) {
      section.hidden = !section.querySelector(".card:not([hidden])");
    });
  }
  function all() { return true; }
  function fill(card) {
    var detail = card.querySelector("template");
    if (detail) { card.replaceChild(detail.content, detail); }
  }
  if ("IntersectionObserver" in window) {
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) {
          fill(entry.target);
          observer.unobserve(entry.target);
        }
      });
    }, {rootMargin: "800px 0px"});
    cards.forEach(function (card) {
      if (card.querySelector("template")) { observer.observe(card); }
    });
  } else {
    cards.forEach(fill);
  }
  function say(text, hits) {
    status.textContent = text;
    found.textContent = "";
    (hits || []).forEach(function (card) {
      var a = document.createElement("a");
      a.href = "#" + encodeURIComponent(card.id);
      a.textContent = card.dataset.layer + ":" + card.dataset.filter;
      found.appendChild(a);
      found.appendChild(document.createTextNode(" "));
    });
  }
  function layerOf(name) {
    if (layers.indexOf(name) >= 0) { return name; }
    if (/^\d+$/.test(name) && Number(name) < layers.length) {
      return layers[Number(name)];
    }
    return null;
  }
  function openCard(layer, filter) {
    var card = document.getElementById(layer + "-" + filter);
    showOnly(all);
    if (!card || !card.classList.contains("card")) {
      say("Filter " + filter + " of layer " + layer + " has no card on this " +
          "page: its layer is not shown (filtag vis --layers " + layer + ").");
      return false;
    }
    fill(card);
    card.classList.add("focus");
    card.scrollIntoView({block: "center"});
    var tags = tagsOf(card);
    say("Filter " + filter + " of layer " + layer + ": " +
        (tags.length ? "tagged " + tags.join(", ") : "no tag") + ".");
    return true;
  }
  function findClass(query) {
    var q = query.toLowerCase();
    var exact = cards.some(function (card) {
      return tagsOf(card).some(function (t) { return t.toLowerCase() === q; });
    });
    function match(card) {
      return tagsOf(card).some(function (t) {
        t = t.toLowerCase();
        return exact ? t === q : t.indexOf(q) >= 0;
      });
    }
    showOnly(match);
    var hits = cards.filter(match);
    say(hits.length + " filter" + (hits.length === 1 ? "" : "s") +
        " on this page carr" + (hits.length === 1 ? "ies " : "y ") +
        (exact ? "the class " : "a class containing ") + "\u201c" + query +
        "\u201d" + (hits.length ? ":" : "."), hits);
    return hits.length;
  }
  function find(query, typing) {
    query = query.trim();
    var pair = /^(.+?)\s*:\s*(\d+)$/.exec(query);
    if (pair) {
      var layer = layerOf(pair[1]);
      if (layer !== null) { return openCard(layer, Number(pair[2])); }
      if (!typing) {
        say("No layer " + pair[1] + " (layers: " + layers.join(", ") + ").");
      }
      return false;
    }
    if (!query) { showOnly(all); say(""); return true; }
    if (typing && query.indexOf(":") >= 0) { return false; }
    return findClass(query);
  }
  function go(id) {
    var pair = /^(.+)-(\d+)$/.exec(id);
    if (pair && layers.indexOf(pair[1]) >= 0) {
      openCard(pair[1], Number(pair[2]));
    }
  }
  function fromHash() {
    try {
      go(decodeURIComponent(window.location.hash.slice(1)));
    } catch (error) {
      say("");
    }
  }
  function openFromMap(layer, filter) {
    var hash = "#" + encodeURIComponent(layer + "-" + filter);
    if (window.location.hash === hash) {
      openCard(layer, filter);
    } else {
      window.location.hash = hash;
    }
  }
  input.addEventListener("input", function () { find(input.value, true); });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    find(input.value, false);
  });
  Array.prototype.forEach.call(document.querySelectorAll(".tagmap"), function (box) {
    var graph = box.querySelector(".plotly-graph-div");
    if (graph && graph.on) {
      graph.on("plotly_click", function (event) {
        var point = event && event.points && event.points[0];
        if (point) { openFromMap(box.dataset.layer, Number(point.x)); }
      });
    }
  });
  window.addEventListener("hashchange", fromHash);
  fromHash();
})();
"""


def script_html() -> str:
    """Return the page's :data:`SCRIPT` as a ``<script>`` (for the body's end)."""
    return f"<script>{SCRIPT}</script>"


def network_for_pictures(filtags_file: Path) -> Any:
    """Rebuild step 1's network from a step-2 file (its model file checked).

    Raises:
        FiltagError: the model file changed or cannot be loaded.
    """
    from filtag import steps

    return steps.load_tags_run(filtags_file, None, BATCH_SIZE).network
