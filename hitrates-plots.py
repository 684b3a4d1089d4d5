"""Plot the hit rates of step 4: an interactive web page and PNG images.

The same as ``filtag plots``; ``python hitrates-plots.py --help`` lists every
flag. Example:

    python hitrates-plots.py --hitrates-file results/...-HR-VGG16-vars.pkl
"""

from __future__ import annotations

from collections.abc import Sequence

from filtag import commands

# --- Inputs: edit here, or override with flags ------------------------------------
HITRATES_FILE = None  # step 4's ...-HR-<network>-vars.pkl
SAVE_DIR = "results"
TIME_DELTA = 0  # hours from UTC for the run id
# -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with this file's Inputs, overridden by flags in ``argv``."""
    return commands.run(
        "plots",
        argv,
        hitrates_file=HITRATES_FILE,
        save_dir=SAVE_DIR,
        time_delta=TIME_DELTA,
    )


if __name__ == "__main__":
    raise SystemExit(main())
