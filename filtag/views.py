"""The pages of ``filtag vis`` and ``filtag plots``: load a step file, build the
figures (:mod:`filtag.plots`), write the pages (:mod:`filtag.pages`: offline,
plotly.js shared beside them) and the PNG files.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from filtag import cards, overlays, pages, params, plots
from filtag.artifacts import atomic_write_bytes, load_step_vars, network_of, reserve_run
from filtag.errors import FiltagError
from filtag.logs import plain, run_logs
from filtag.results import RunResult, TagPageResult, result_of
from filtag.text import printable
from filtag.variants import VARIANTS

if TYPE_CHECKING:
    import plotly.graph_objects as go

logger = logging.getLogger(__name__)


def tag_views(
    filtags_file: str | Path | None = None,
    *,
    kind: str = "k",
    value: int = 5,
    view_layers: Any = None,
    images_dir: str | Path | None = None,
    save_dir: str | Path = "results",
    time_delta: float = 0,
) -> TagPageResult:
    """Write the page of step 2's tags under one rule, with a card per filter.

    The page shows the tags per filter, per shown layer a tag map and the
    classes sharing filters, and a card per filter of the shown layers
    (:mod:`filtag.cards`): its tags, its activation per class from step 1
    and its exemplars with its feature map over each (drawn in a folder
    beside the page, ``<prefix>-<kind><value>-cards/``).

    Args:
        filtags_file: step 2's ``-vars.pkl``.
        kind, value: the rule (``value`` must be one of step 2's).
        view_layers: layer names or indices to show (None: the last 4).
        images_dir: the folder of the exemplar images (None: the folder
            step 1 read).
        save_dir, time_delta: see :data:`filtag.params.PARAMS`.

    Returns:
        The run; ``path`` is the page.

    Raises:
        FiltagError: bad input, or ``images_dir`` is not a folder.
        ArtifactError: step 1's file is broken or of another run.
    """
    args = params.checked(
        {"filtags_file": filtags_file, "kind": kind, "value": value,
         "view_layers": view_layers, "images_dir": images_dir,
         "save_dir": save_dir, "time_delta": time_delta},
        required=["filtags_file", "value"],
    )  # fmt: skip
    name = f"filTags_{args['kind']}"
    v = load_step_vars(args["filtags_file"], "TF", "--filtags-file", [name])
    if args["value"] not in v[name]:
        available = ", ".join(map(str, sorted(v[name])))
        raise FiltagError(
            f"--value {args['value']} is not in {args['filtags_file']} "
            f"({args['kind']} values: {available}); choose one of those or rerun "
            "step 2 with it in --k-q."
        )
    if args["images_dir"] is not None and not args["images_dir"].is_dir():
        raise FiltagError(
            f"--images-dir {args['images_dir']} is not a folder; pass the folder "
            "of class sub-folders that step 1 read."
        )
    meta = v.get("meta")
    layers_tags = [
        [[printable(tag) for tag in tags] for tags in layer]
        for layer in v[name][args["value"]]
    ]
    classes = [printable(c) for c in plots.class_names(meta, v[name])]
    layers = plots.layer_names(meta, len(layers_tags))
    shown = plots.choose_layers(args["view_layers"], layers)
    step1 = cards.read_step1(meta, args["filtags_file"], len(classes))
    network = network_of(meta, args["filtags_file"], "TF")
    run = reserve_run(args["save_dir"], "VIS", network, args["time_delta"])
    with run_logs(run):
        logger.debug("filter tag views run %s: %s", run.prefix, plain(args))
        rule = plots.rule_text(args["kind"], args["value"])
        figures = [
            pages.figure_html(
                plots.tags_histogram_figure(
                    [layers_tags[a] for a in shown], [layers[a] for a in shown], rule
                )
            )
        ]
        for a in shown:
            tags = layers_tags[a]
            in_layer = plots.rule_text(args["kind"], args["value"], len(tags))
            tag_map = plots.tag_map_figure(tags, classes, layers[a], in_layer)
            figures.append(cards.tag_map_html(pages.figure_html(tag_map), layers[a]))
            figures.append(
                pages.figure_html(
                    plots.cotag_figure(tags, classes, layers[a], in_layer)
                )
            )
        folder = run.path(f"{args['kind']}{args['value']}-cards")
        filter_cards, notes = _filter_cards(
            step1, layers_tags, layers, shown, args, folder
        )
        fallback = (
            "; in a layer with fewer than k filters: those above its mean"
            if args["kind"] == "k" and args["value"]
            else ""
        )
        intro = [
            f"Network {network}: {len(classes)} classes, {len(layers)} layers with "
            f"{sum(map(len, layers_tags))} filters; shown: "
            f"{', '.join(layers[a] for a in shown)}. Tags from "
            f"{args['filtags_file'].name}.",
            "FilTag tags a filter with a class when the filter is among the most "
            "active filters of its layer for the images of that class "
            f"({rule}{fallback}). "
            "The tags explain what a filter responds to: a filter tagged with one "
            "class is specific to it, a filter tagged with many classes is shared. "
            "Each filter of the shown layers has a card below; find one with "
            "the search box or by clicking a cell of a tag map.",
        ]
        path = run.path(f"{args['kind']}{args['value']}.html")
        body = (
            pages.paragraphs(intro)
            + cards.finder_html(classes, layers)
            + "".join(figures)
            + cards.cards_html(filter_cards, classes, rule, notes)
            + cards.script_html()
        )
        title = f"Filter tags of {network}, {args['kind']} = {args['value']}"
        size = pages.write_page(path, title, body, plotly=True)
        every = [card for layer in filter_cards for card in layer]
        drawn = sum(card.picture is not None for card in every)
        logger.info(
            "tag page: %d figures, %d filter cards (%d with exemplar pictures) -> "
            "%s (%.2f MB)",
            len(figures), len(every), drawn, path.name, size / 1e6,
        )  # fmt: skip
    return result_of(
        TagPageResult, run, path, cards=tuple(every), classes=tuple(classes),
        notes=tuple(notes),
    )  # fmt: skip


def _filter_cards(
    step1: cards.Step1Data | str,
    layers_tags: list[list[list[str]]],
    layers: list[str],
    shown: list[int],
    args: dict[str, Any],
    folder: Path,
) -> tuple[list[list[cards.FilterCard]], list[str]]:
    """Return the cards of the shown layers (their pictures drawn into ``folder``).

    Returns:
        (per shown layer, its cards; notes on what the cards cannot show).
    """
    if isinstance(step1, str):
        logger.warning("%s", step1)
        return cards.filter_cards(layers_tags, layers, shown, None, {}), [step1]
    images_dir = args["images_dir"] or step1.images_dir
    needed = sorted(
        {p for a in shown for paths in step1.exemplar_images[a] for p in paths}
    )
    note = cards.images_note(images_dir, needed)
    pictures: dict[int, dict[int, str]] = {}
    size = (0, 0)
    if not note:
        try:
            network = cards.network_for_pictures(args["filtags_file"])
        except FiltagError as exc:
            note = f"The cards show tags and activations only: {exc}"
        else:
            size = overlays.picture_size(network.spec.height, network.spec.width)
            for a in shown:
                names = cards.draw_exemplars(
                    network, images_dir, layers[a], step1.exemplar_images[a],
                    folder, str(a),
                )  # fmt: skip
                pictures[a] = {
                    b: quote(f"{folder.name}/{name}") for b, name in names.items()
                }
                logger.debug("layer %s: %d exemplar pictures", layers[a], len(names))
    if note:
        logger.warning("%s", note)
    notes = [note] if note else []
    return cards.filter_cards(layers_tags, layers, shown, step1, pictures, size), notes


def hitrate_plots(
    hitrates_file: str | Path | None = None,
    *,
    save_dir: str | Path = "results",
    time_delta: float = 0,
) -> RunResult:
    """Write the page (and PNGs) of step 4's hit rates.

    Args:
        hitrates_file: step 4's ``-vars.pkl``.
        save_dir, time_delta: see :data:`filtag.params.PARAMS`.

    Returns:
        The run; ``path`` is the page.
    """
    args = params.checked(
        {"hitrates_file": hitrates_file, "save_dir": save_dir,
         "time_delta": time_delta},
        required=["hitrates_file"],
    )  # fmt: skip
    needed = [
        variant.hit_var(prefix)
        for prefix in ("totalhit", "meanhit")
        for variant in VARIANTS
    ]
    v = load_step_vars(
        args["hitrates_file"], "HR", "--hitrates-file", [*needed, "hit_k", "hit_q"]
    )
    meta = v.get("meta") or {}
    network = network_of(meta, args["hitrates_file"], "HR")
    m_values = sorted({m for rates in v["totalhit_k"].values() for m in rates})
    if not m_values:
        raise FiltagError(
            f"--hitrates-file {args['hitrates_file']} holds no hit rate; rerun "
            "step 4 with test images."
        )
    figures = hitrate_figures(v, network)
    run = reserve_run(args["save_dir"], "HRP", network, args["time_delta"])
    with run_logs(run):
        logger.debug("hit-rate plots run %s: %s", run.prefix, plain(args))
        intro = [
            f"Hit rates of {network} from {args['hitrates_file'].name}.",
            "FilTag ranks the classes for a test image by the tags of the filters "
            "the image activates most. A hit: the network's own top-1 class is "
            "among the first m classes of that ranking. k: the k most active "
            "filters per layer count; q: the q % most active; k = 0 or q = 0: the "
            "filters above the layer's mean.",
        ]
        path = run.path("hitrates.html")
        size = pages.write_page(
            path,
            f"Hit rates of {network}",
            pages.paragraphs(intro) + "".join(map(pages.figure_html, figures)),
            plotly=True,
        )
        pngs = "no PNG images"
        try:
            images_png = plots.png_images(figures)
        except FiltagError as exc:
            logger.warning("PNG images not written: %s", exc)
        else:
            for suffix, png in zip(
                ("total", "mean", "classes"), images_png, strict=True
            ):
                atomic_write_bytes(run.path(f"hitrates-{suffix}.png"), [png])
            pngs = f"{len(images_png)} PNG images beside it"
        logger.info(
            "hit-rate page: %d figures -> %s (%.2f MB), %s",
            len(figures), path.name, size / 1e6, pngs,
        )  # fmt: skip
    return result_of(RunResult, run, path)


def hitrate_figures(v: Mapping[str, Any], network: str) -> list[go.Figure]:
    """Return the figures of step 4's hit rates, with the chance level.

    Args:
        v: step 4's variables (``totalhit_*``, ``meanhit_*``, ``hit_k``,
            ``hit_q``, ``meta``; without ``meta["n_classes"]``, as in files of
            the original scripts, no chance level is drawn).
        network: the network's name, for the titles.

    Returns:
        [pooled over all images, mean over classes, per class at the smallest
        m]: :func:`filtag.plots.hitrate_figure` twice, then
        :func:`filtag.plots.class_hitrate_figure`.
    """
    meta = v.get("meta") or {}
    m_values = sorted({m for rates in v["totalhit_k"].values() for m in rates})
    images = f"{meta['images']} test images" if "images" in meta else "test images"
    n_classes = meta.get("n_classes")
    evaluated = len(v["hit_k"])
    chance = (
        f" The dotted line is chance: m / {n_classes} classes." if n_classes else ""
    )
    return [
        plots.hitrate_figure(
            {variant.name: v[variant.hit_var("totalhit")] for variant in VARIANTS},
            f"Hit rate of {network}: the network's class among the first m "
            "tag-ranked classes",
            f"Pooled over {images} of {evaluated} classes. Higher is better: the "
            f"filter tags agree with the network's own decision.{chance}",
            n_classes,
        ),
        plots.hitrate_figure(
            {variant.name: v[variant.hit_var("meanhit")] for variant in VARIANTS},
            f"Hit rate of {network}, mean over classes",
            f"The mean of the per-class hit rates ({evaluated} classes with test "
            f"images): every class counts the same, however many images it has."
            f"{chance}",
            n_classes,
        ),
        plots.class_hitrate_figure(
            {
                kind: {printable(c): r for c, r in v[f"hit_{kind}"].items()}
                for kind in ("k", "q")
            },
            m_values[0],
            n_classes,
        ),
    ]
