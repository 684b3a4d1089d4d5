"""Step 2 of FilTag: tag each filter with the classes that activate it most.

The same as ``filtag step2``; ``python step2filtertags.py --help`` lists every
flag. Needs no TensorFlow. Example:

    python step2filtertags.py --k-q 0-25 \\
        --activations-file results/...-QFA-VGG16-vars.pkl
"""

from __future__ import annotations

from collections.abc import Sequence

from filtag import commands

# --- Inputs: edit here, or override with flags ------------------------------------
ACTIVATIONS_FILE = None  # step 1's ...-QFA-<network>-vars.pkl
K_Q = "0-25"  # k and q values: list and/or ranges, e.g. [1, 5, 25] or '0-25'
EXPORT = False  # also write -tags.csv and -tags.json
SAVE_DIR = "results"
TIME_DELTA = 0  # hours from UTC for the run id
# -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with this file's Inputs, overridden by flags in ``argv``."""
    return commands.run(
        "step2",
        argv,
        activations_file=ACTIVATIONS_FILE,
        k_q=K_Q,
        export=EXPORT,
        save_dir=SAVE_DIR,
        time_delta=TIME_DELTA,
    )


if __name__ == "__main__":
    raise SystemExit(main())
