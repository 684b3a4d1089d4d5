"""Check the tags by ablation: do a class's tagged filters matter for it? (after step 2)

The same as ``filtag check``; ``python tagcheck.py --help`` lists every flag.
Examples:

    python tagcheck.py --filtags-file results/...-TF-VGG16-vars.pkl
    python tagcheck.py --filtags-file results/...-TF-VGG16-vars.pkl --layers all
"""

from __future__ import annotations

from collections.abc import Sequence

from filtag import commands

# --- Inputs: edit here, or override with flags ------------------------------------
FILTAGS_FILE = None  # step 2's ...-TF-<network>-vars.pkl
KIND = "k"  # k: the k most active filters; q: the q % most active
VALUE = 5  # the k or q value; step 2 must have computed it
CHECK_LAYERS = "last"  # last, all (every selected layer at once) or layer names
RANDOM_DRAWS = 10  # random filter sets per class (and tag shuffles)
OTHERS_PER_CLASS = None  # drop_others: first N test images per class; None: all
IMAGES_DIR = None  # None: the folder step 1 read
SPLIT = None  # None: step 1's
SEED_RN = None  # None: step 1's (seeds the random draws too)
BATCH_SIZE = 32
SAVE_DIR = "results"
TIME_DELTA = 0  # hours from UTC for the run id
# -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with this file's Inputs, overridden by flags in ``argv``."""
    return commands.run(
        "check",
        argv,
        filtags_file=FILTAGS_FILE,
        kind=KIND,
        value=VALUE,
        check_layers=CHECK_LAYERS,
        random_draws=RANDOM_DRAWS,
        others_per_class=OTHERS_PER_CLASS,
        images_dir=IMAGES_DIR,
        split=SPLIT,
        seed_rn=SEED_RN,
        batch_size=BATCH_SIZE,
        save_dir=SAVE_DIR,
        time_delta=TIME_DELTA,
    )


if __name__ == "__main__":
    raise SystemExit(main())
