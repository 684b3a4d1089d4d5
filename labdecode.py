"""Decode the class labels of a step 2, 3 or 4 file into names (n02088364 -> beagle).

Rewrites every class label through --mapping (decoding_wnids.txt, ImageNet wnid
-> name, by default): step 2's tags and class names; step 3's index and every
per-class file (top-5 predictions, rankings, image lists, classes); step 4's
per-class hit rates and classes. Counts, probabilities, rates and paths stay as
they are. A label the mapping lacks stays as it is (the warnings log counts
them). Labels that would share a name are each named "<name> (<label>)"
(decoding_wnids.txt names two wnids "crane" and two "maillot"), so no ranking
holds two classes of one name.

Reads the -vars.pkl given by --vars-file (a step-3 index with its class files
beside it); writes, in --save-dir, a new run of the same step and file names,
<run id>-<TF|E|HR>-<network>-names-vars.pkl (+ step 3's -varsX.pkl, step 2's
-tags.csv/-tags.json, step 3's -rankings.csv), whose meta keeps the step and
adds label_mapping ({original label: name}), decoded_from, mapping_file and
unknown_labels; prints its path as the last line. The other scripts read the
new file as they read the input. Needs no TensorFlow.

Example:
    python labdecode.py --vars-file results/...-E-efficientnet_lite0-vars.pkl
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from filtag import cli, relabel

# --- Inputs: edit here, or override with flags ------------------------------------
VARS_FILE = None  # a step 2, 3 or 4 ...-<TF|E|HR>-<network>-vars.pkl
MAPPING = None  # None: decoding_wnids.txt; or a 'label, name' file (comma or tab)
SAVE_DIR = "results"
TIME_DELTA = 0  # hours from UTC for the run id
# -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Return the inputs: this file's Inputs block, overridden by flags in ``argv``."""
    return cli.parse(
        __doc__,
        argv,
        vars_file=VARS_FILE,
        mapping=MAPPING,
        save_dir=SAVE_DIR,
        time_delta=TIME_DELTA,
        required=["vars_file"],
    )


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(relabel.decode, parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
