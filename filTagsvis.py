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
from collections.abc import Sequence

from filtag import cli, views

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


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(views.write_tag_views, parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
