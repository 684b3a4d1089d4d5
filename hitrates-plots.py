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
from collections.abc import Sequence

from filtag import cli, views

# --- Inputs: edit here, or override with flags ------------------------------------
HITRATES_FILE = None  # step 4's ...-HR-<network>-vars.pkl
SAVE_DIR = "results"
TIME_DELTA = 0  # hours from UTC for the run id
# -----------------------------------------------------------------------------------


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


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(views.write_hitrate_plots, parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
