"""Run filtag end to end on the embedded default, offline.

The same as ``filtag demo``: trains the default CNN on first use (cached in
~/.cache/filtag), runs steps 1-4 and the views, and prints the summary and the
report page's path. Example:

    python rundefault.py --save-dir results
"""

from __future__ import annotations

from collections.abc import Sequence

from filtag import commands

# --- Inputs: edit here, or override with flags ------------------------------------
SAVE_DIR = "results"
TIME_DELTA = 0  # hours from UTC for the run ids
BATCH_SIZE = 32
# -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with this file's Inputs, overridden by flags in ``argv``."""
    return commands.run(
        "demo",
        argv,
        save_dir=SAVE_DIR,
        time_delta=TIME_DELTA,
        batch_size=BATCH_SIZE,
    )


if __name__ == "__main__":
    raise SystemExit(main())
