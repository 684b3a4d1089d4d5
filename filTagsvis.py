r"""Show the filter tags of step 2 as an interactive web page.

For one rule (--kind k or q, --value) and some layers (--layers; by default the
last 4), the page shows how many class tags the filters carry, and per layer
which filters are tagged with which class (a filter x class map) and which
classes share filters (a class x class map). Hovering shows layer, filter,
class and tags; dragging zooms in.

Reads step 2's -vars.pkl; writes, in --save-dir, the page
<run id>-VIS-<network>-<kind><value>.html (plotly.js embedded: it opens
offline in any browser) and prints its path as the last line.

Example:
    python filTagsvis.py --filtags-file results/...-TF-VGG16-vars.pkl \
        --kind k --value 5 --layers block5_conv3,block5_conv2
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from filtag import cli, plots
from filtag.artifacts import atomic_write_text, load_step_vars, reserve_run
from filtag.errors import FiltagError

logger = logging.getLogger("filtag.vis")

# --- Inputs: edit here, or override with flags ------------------------------------
FILTAGS_FILE = None  # step 2's ...-TF-<network>-vars.pkl
KIND = "k"  # k: the k most active filters; q: the q % most active
VALUE = 5  # the k or q value; step 2 must have computed it
VIEW_LAYERS = None  # layer names or indices, e.g. "conv3,conv4" or "0,2"; None: last 4
SAVE_DIR = "results"
TIME_DELTA = 0  # hours from UTC for the run id
# -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Return the inputs: this file's Inputs block, overridden by flags in ``argv``."""
    return cli.parse(
        __doc__,
        argv,
        filtags_file=FILTAGS_FILE,
        kind=KIND,
        value=VALUE,
        view_layers=VIEW_LAYERS,
        save_dir=SAVE_DIR,
        time_delta=TIME_DELTA,
        required=["filtags_file"],
    )


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


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(write_tag_views, parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
