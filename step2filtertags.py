"""Step 2 of FilTag: tag each filter with the classes that activate it most.

For every k in --k-q, a filter is tagged with a class when it is among the k
largest filter activations of its layer for that class (k = 0: strictly above
the layer's mean; a k larger than the layer falls back to the mean rule). For
every q in --k-q, the same with the p = max(1, floor(q / 100 * filters + 0.5))
largest (q = 0 or q > 100: the mean rule). Ties at the cut go to the lower
filter index.

Reads step 1's -vars.pkl; writes, in --save-dir, <run id>-TF-<network>-vars.pkl
with filTags_k, filTags_q and meta (see -vars-info.txt), and prints its path as
the last line. Needs no TensorFlow.

Example:
    python step2filtertags.py --k-q 0-25 \
        --activations-file results/...-QFA-VGG16-vars.pkl
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from filtag import cli, pipeline

# --- Inputs: edit here, or override with flags ------------------------------------
ACTIVATIONS_FILE = None  # step 1's ...-QFA-<network>-vars.pkl
K_Q = "0-25"  # k and q values: list and/or ranges, e.g. [1, 5, 25] or "0-25"
EXPORT = False  # also write -tags.csv and -tags.json
SAVE_DIR = "results"
TIME_DELTA = 0  # hours from UTC for the run id
# -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Return the inputs: this file's Inputs block, overridden by flags in ``argv``."""
    return cli.parse(
        __doc__,
        argv,
        activations_file=ACTIVATIONS_FILE,
        k_q=K_Q,
        export=EXPORT,
        save_dir=SAVE_DIR,
        time_delta=TIME_DELTA,
        required=["activations_file"],
    )


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(pipeline.step2, parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
