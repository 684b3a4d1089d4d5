"""The pages of filTagsvis.py and hitrates-plots.py: load a step file, build the
figures (:mod:`filtag.plots`), write standalone HTML (and PNG) files.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

from filtag import cli, plots
from filtag.artifacts import (
    atomic_write_bytes,
    atomic_write_text,
    load_step_vars,
    reserve_run,
)
from filtag.errors import FiltagError

logger = logging.getLogger(__name__)


def write_tag_views(args: argparse.Namespace) -> Path:
    """Load the step-2 file, build the tag figures, write the page.

    Args:
        args: filtags_file, kind, value, view_layers, save_dir, time_delta.

    Returns:
        The HTML page written.
    """
    name = f"filTags_{args.kind}"
    v = load_step_vars(args.filtags_file, "TF", "--filtags-file", [name])
    if args.value not in v[name]:
        available = ", ".join(map(str, sorted(v[name])))
        raise FiltagError(
            f"--value {args.value} is not in {args.filtags_file} ({args.kind} values: "
            f"{available}); choose one of those or rerun step 2 with it in --k-q."
        )
    meta = v.get("meta")
    layers_tags = v[name][args.value]
    classes = plots.class_names(meta, v[name])
    layers = plots.layer_names(meta, len(layers_tags))
    shown = plots.choose_layers(args.view_layers, layers)
    match = re.search(r"-TF-(.+)-vars\.pkl$", args.filtags_file.name)
    network = meta["network"] if meta else match.group(1) if match else "filtags"
    run = reserve_run(args.save_dir, "VIS", network, args.time_delta)
    with cli.run_logs(run):
        logger.info("filter tag views run %s: %s", run.prefix, vars(args))
        rule = plots.rule_text(args.kind, args.value)
        figures = [
            plots.tags_histogram_figure(
                [layers_tags[a] for a in shown], [layers[a] for a in shown], rule
            )
        ]
        for a in shown:
            tags = layers_tags[a]
            in_layer = plots.rule_text(args.kind, args.value, len(tags))
            figures.append(plots.tag_map_figure(tags, classes, layers[a], in_layer))
            figures.append(plots.cotag_figure(tags, classes, layers[a], in_layer))
        fallback = (
            "; in a layer with fewer than k filters: those above its mean"
            if args.kind == "k" and args.value
            else ""
        )
        intro = [
            f"Network {network}: {len(classes)} classes, {len(layers)} layers with "
            f"{sum(map(len, layers_tags))} filters; shown: "
            f"{', '.join(layers[a] for a in shown)}. Tags from {args.filtags_file}.",
            "FilTag tags a filter with a class when the filter is among the most "
            "active filters of its layer for the images of that class "
            f"({rule}{fallback}). "
            "The tags explain what a filter responds to: a filter tagged with one "
            "class is specific to it, a filter tagged with many classes is shared.",
        ]
        page = plots.page_html(
            f"Filter tags of {network}, {args.kind} = {args.value}", intro, figures
        )
        path = run.path(f"{args.kind}{args.value}.html")
        atomic_write_text(path, page)
        logger.info(
            "wrote %s (%d figures, %.1f MB)", path, len(figures), len(page) / 1e6
        )
        return path


VARIANTS = ("k", "k_ll", "q", "q_ll")


def write_hitrate_plots(args: argparse.Namespace) -> Path:
    """Load the step-4 file, build the hit-rate figures, write the page and PNGs.

    Args:
        args: hitrates_file, save_dir, time_delta.

    Returns:
        The HTML page written.
    """
    needed = [f"{prefix}_{v}" for prefix in ("totalhit", "meanhit") for v in VARIANTS]
    v = load_step_vars(
        args.hitrates_file, "HR", "--hitrates-file", [*needed, "hit_k", "hit_q"]
    )
    meta = v.get("meta") or {}
    match = re.search(r"-HR-(.+)-vars\.pkl$", args.hitrates_file.name)
    network = meta.get("network") or (match.group(1) if match else "hitrates")
    m_values = sorted({m for rates in v["totalhit_k"].values() for m in rates})
    if not m_values:
        raise FiltagError(
            f"--hitrates-file {args.hitrates_file} holds no hit rate; rerun step 4 "
            "with test images."
        )
    images = f"{meta['images']} test images" if "images" in meta else "test images"
    n_classes = len(v["hit_k"])
    figures = [
        plots.hitrate_figure(
            {variant: v[f"totalhit_{variant}"] for variant in VARIANTS},
            f"Hit rate of {network}: the network's class among the first m "
            "tag-ranked classes",
            f"Pooled over {images} of {n_classes} classes. Higher is better: the "
            "filter tags agree with the network's own decision.",
        ),
        plots.hitrate_figure(
            {variant: v[f"meanhit_{variant}"] for variant in VARIANTS},
            f"Hit rate of {network}, mean over classes",
            f"The mean of the per-class hit rates ({n_classes} classes with test "
            "images): every class counts the same, however many images it has.",
        ),
        plots.class_hitrate_figure({"k": v["hit_k"], "q": v["hit_q"]}, m_values[0]),
    ]
    run = reserve_run(args.save_dir, "HRP", network, args.time_delta)
    with cli.run_logs(run):
        logger.info("hit-rate plots run %s: %s", run.prefix, vars(args))
        intro = [
            f"Hit rates of {network} from {args.hitrates_file}.",
            "FilTag ranks the classes for a test image by the tags of the filters "
            "the image activates most. A hit: the network's own top-1 class is "
            "among the first m classes of that ranking. k: the k most active "
            "filters per layer count; q: the q % most active; k = 0 or q = 0: the "
            "filters above the layer's mean.",
        ]
        page = plots.page_html(f"Hit rates of {network}", intro, figures)
        path = run.path("hitrates.html")
        atomic_write_text(path, page)
        try:
            images_png = plots.png_images(figures)
        except FiltagError as exc:
            logger.warning("PNG images not written: %s", exc)
        else:
            for suffix, png in zip(
                ("total", "mean", "classes"), images_png, strict=True
            ):
                atomic_write_bytes(run.path(f"hitrates-{suffix}.png"), [png])
            logger.info("wrote %d PNG images beside the page", len(images_png))
        return path
