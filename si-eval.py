"""Explain single images by the tags of their most active filters (after step 2).

For one class: each test image's tag counts (all layers and the last layer, for
the chosen k or q), with the network's prediction beside them. With --image:
any image file in full: the network's top-5, the classes ranked by the tags of
the image's active filters, and per layer which active filters carried which
tags (and with --html, the same as a page with the image).

Reads step 2's -vars.pkl (the network and its layers come from step 1 through
it); writes <run id>-SI-<network>-results.txt (and -explanation.html) in
--save-dir, prints the explanation, then the path of the results as the last
line.

Examples:
    python si-eval.py --filtags-file results/...-TF-VGG16-vars.pkl --class-name Bag
    python si-eval.py --filtags-file results/...-TF-VGG16-vars.pkl \\
        --image my_cat.jpg --kind q --value 5 --html
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from filtag import cli, pipeline

# --- Inputs: edit here, or override with flags ------------------------------------
FILTAGS_FILE = None  # step 2's ...-TF-<network>-vars.pkl
CLASS_NAME = None  # explain this class's test images ...
IMAGE = None  # ... or this one image file
KIND = "k"  # k: the k most active filters; q: the q % most active
VALUE = None  # the k or q value; None: 5 if step 2 has it, else its smallest
HTML = False  # also write the explanation of --image as an HTML page
IMAGES_DIR = None  # None: the folder step 1 read
SPLIT = None  # None: step 1's
SEED_RN = None  # None: step 1's
BATCH_SIZE = 32
SAVE_DIR = "results"
TIME_DELTA = 0  # hours from UTC for the run id
# -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Return the inputs: this file's Inputs block, overridden by flags in ``argv``."""
    return cli.parse(
        __doc__,
        argv,
        filtags_file=FILTAGS_FILE,
        class_name=CLASS_NAME,
        image=IMAGE,
        kind=KIND,
        value=VALUE,
        html=HTML,
        images_dir=IMAGES_DIR,
        split=SPLIT,
        seed_rn=SEED_RN,
        batch_size=BATCH_SIZE,
        save_dir=SAVE_DIR,
        time_delta=TIME_DELTA,
        required=["filtags_file"],
    )


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(pipeline.si_eval, parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
