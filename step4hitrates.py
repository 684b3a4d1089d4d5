"""Step 4 of FilTag: hit rates of the tag rankings against the network.

The same as ``filtag step4``; ``python step4hitrates.py --help`` lists every
flag. Example:

    python step4hitrates.py --eval-file results/...-E-VGG16-vars.pkl --m 1-5
"""

from __future__ import annotations

from collections.abc import Sequence

from filtag import commands

# --- Inputs: edit here, or override with flags ------------------------------------
EVAL_FILE = None  # step 3's ...-E-<network>-vars.pkl
M = "1-5"  # m values, e.g. [1, 3, 5] or '1-5'
K_Q = None  # None: all of step 3's values
CLASSES_IMG = None  # class names whose images count; None: all evaluated
SAVE_DIR = "results"
TIME_DELTA = 0  # hours from UTC for the run id
# -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with this file's Inputs, overridden by flags in ``argv``."""
    return commands.run(
        "step4",
        argv,
        eval_file=EVAL_FILE,
        m=M,
        k_q=K_Q,
        classes_img=CLASSES_IMG,
        save_dir=SAVE_DIR,
        time_delta=TIME_DELTA,
    )


if __name__ == "__main__":
    raise SystemExit(main())
