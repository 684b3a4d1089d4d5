"""Step 3 of FilTag: explain the test images by the tags of their active filters.

Rebuilds step 1's train/test split and, for each test image, runs the network
once: its top-5 prediction, and its filter activations. For each k (and q) of
--k-q, the image's active filters per layer are chosen by step 2's rule; each
active filter adds 1 for each of its tags; the classes are ranked by count
(descending, ties by class index), over all layers and over the last layer.

Reads step 2's -vars.pkl (the network, preprocessing and layers come from step
1 through it); writes, in --save-dir, one <run id>-E-<network>-varsX.pkl per
class X (y, y_k, y_k_ll, y_q, y_q_ll, class_images_dict) and the index
<run id>-E-<network>-vars.pkl (eval_files, k_q, classes, meta), whose path it
prints as the last line.

Example:
    python step3evaluation.py --k-q 1,5,25 \
        --filtags-file results/...-TF-VGG16-vars.pkl
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from filtag import cli, pipeline

# --- Inputs: edit here, or override with flags ------------------------------------
FILTAGS_FILE = None  # step 2's ...-TF-<network>-vars.pkl
K_Q = None  # None: all of step 2's values; or e.g. [1, 5, 25] / "0-10"
IMAGES_DIR = None  # None: the folder step 1 read
SPLIT = None  # None: step 1's
SEED_RN = None  # None: step 1's
SAVE_DIR = "results"
TIME_DELTA = 0  # hours from UTC for the run id
BATCH_SIZE = 32
CLASSES = None  # class names to evaluate, e.g. ["Bag", "Coat"]; None: all
EXPORT = False  # also write -rankings.csv
MIXED_PRECISION = False  # compute the network in float16 (GPUs)
RESUME = None  # run id of an interrupted run to continue, e.g. "2026-11-21-2130"
# -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Return the inputs: this file's Inputs block, overridden by flags in ``argv``."""
    return cli.parse(
        __doc__,
        argv,
        filtags_file=FILTAGS_FILE,
        k_q=K_Q,
        images_dir=IMAGES_DIR,
        split=SPLIT,
        seed_rn=SEED_RN,
        save_dir=SAVE_DIR,
        time_delta=TIME_DELTA,
        batch_size=BATCH_SIZE,
        classes=CLASSES,
        export=EXPORT,
        mixed_precision=MIXED_PRECISION,
        resume=RESUME,
        required=["filtags_file"],
    )


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(pipeline.step3, parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
