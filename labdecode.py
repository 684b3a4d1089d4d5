"""Decode the class labels of a step 2, 3 or 4 file into names (n02088364 -> beagle).

The same as ``filtag decode``; ``python labdecode.py --help`` lists every flag.
Needs no TensorFlow. Example:

    python labdecode.py --vars-file results/...-E-efficientnet_lite0-vars.pkl
"""

from __future__ import annotations

from collections.abc import Sequence

from filtag import commands

# --- Inputs: edit here, or override with flags ------------------------------------
VARS_FILE = None  # a step 2, 3 or 4 ...-<TF|E|HR>-<network>-vars.pkl
MAPPING = None  # None: filtag's decoding_wnids.txt; or a 'label, name' file
SAVE_DIR = "results"
TIME_DELTA = 0  # hours from UTC for the run id
# -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with this file's Inputs, overridden by flags in ``argv``."""
    return commands.run(
        "decode",
        argv,
        vars_file=VARS_FILE,
        mapping=MAPPING,
        save_dir=SAVE_DIR,
        time_delta=TIME_DELTA,
    )


if __name__ == "__main__":
    raise SystemExit(main())
