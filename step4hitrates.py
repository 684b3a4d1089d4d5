"""Step 4 of FilTag: hit rates of the tag rankings against the network.

hit(image, k, m) = the network's top-1 class is among the first m classes of the
image's tag ranking. The rates are fractions in [0, 1]: per class, pooled over
all evaluated images (total) and averaged over classes (mean); for all layers
and for the last layer only.

Reads step 3's index -vars.pkl (and the per-class files beside it); writes, in
--save-dir, <run id>-HR-<network>-vars.pkl (hit_*, totalhit_*, meanhit_*,
meta) and -results.txt with the tables; prints the total tables, then the path
of the -vars.pkl as the last line.

Example:
    python step4hitrates.py --eval-file results/...-E-VGG16-vars.pkl --m 1-5
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from filtag import cli, pipeline

# --- Inputs: edit here, or override with flags ------------------------------------
EVAL_FILE = None  # step 3's ...-E-<network>-vars.pkl
M = "1-5"  # m values, e.g. [1, 3, 5] or "1-5"
K_Q = None  # None: all of step 3's values
CLASSES_IMG = None  # class names whose images count; None: all evaluated
SAVE_DIR = "results"
TIME_DELTA = 0  # hours from UTC for the run id
# -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Return the inputs: this file's Inputs block, overridden by flags in ``argv``."""
    return cli.parse(
        __doc__,
        argv,
        eval_file=EVAL_FILE,
        m=M,
        k_q=K_Q,
        classes_img=CLASSES_IMG,
        save_dir=SAVE_DIR,
        time_delta=TIME_DELTA,
        required=["eval_file"],
    )


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(pipeline.step4, parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
