"""Plot the hit rates of step 4: an interactive web page and PNG images.

A hit: the network's own top-1 class is among the first m classes that the
filter tags rank for a test image. The plots show the hit rate (%) against m,
one line per k and per q value, for the tags of all layers and of the last
layer alone: pooled over all test images, and as the mean of the per-class
rates; then each class's hit rate at the smallest m.

Reads step 4's -vars.pkl; writes, in --save-dir, the page
<run id>-HRP-<network>-hitrates.html (plotly.js embedded: it opens offline in
any browser) and one PNG per plot (-hitrates-total.png, -hitrates-mean.png,
-hitrates-classes.png), and prints the page's path as the last line. kaleido
renders the PNGs in headless Chrome/Chromium (Debian: apt-get install
chromium; or set BROWSER_PATH); without one, only the page is written, with a
warning.

Example:
    python hitrates-plots.py --hitrates-file results/...-HR-VGG16-vars.pkl
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from filtag import cli, plots
from filtag.artifacts import (
    atomic_write_bytes,
    atomic_write_text,
    load_step_vars,
    reserve_run,
)
from filtag.errors import FiltagError

logger = logging.getLogger("filtag.hrp")

# --- Inputs: edit here, or override with flags ------------------------------------
HITRATES_FILE = None  # step 4's ...-HR-<network>-vars.pkl
SAVE_DIR = "results"
TIME_DELTA = 0  # hours from UTC for the run id
# -----------------------------------------------------------------------------------

VARIANTS = ("k", "k_ll", "q", "q_ll")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Return the inputs: this file's Inputs block, overridden by flags in ``argv``."""
    return cli.parse(
        __doc__,
        argv,
        hitrates_file=HITRATES_FILE,
        save_dir=SAVE_DIR,
        time_delta=TIME_DELTA,
        required=["hitrates_file"],
    )


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


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(write_hitrate_plots, parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
