"""Step 3 of FilTag: explain the test images by the tags of their active filters.

The same as ``filtag step3``; ``python step3evaluation.py --help`` lists every
flag. Example:

    python step3evaluation.py --filtags-file results/...-TF-VGG16-vars.pkl --k-q 1,5,25
"""

from __future__ import annotations

from collections.abc import Sequence

from filtag import commands

# --- Inputs: edit here, or override with flags ------------------------------------
FILTAGS_FILE = None  # step 2's ...-TF-<network>-vars.pkl
K_Q = None  # None: all of step 2's values; or e.g. [1, 5, 25] / '0-10'
TOP = 20  # classes kept per ranking; 'all': whole rankings
IMAGES_DIR = None  # None: the folder step 1 read
SPLIT = None  # None: step 1's
SEED_RN = None  # None: step 1's
SAVE_DIR = "results"
TIME_DELTA = 0  # hours from UTC for the run id
BATCH_SIZE = 32
CLASSES = None  # class names to evaluate, e.g. ['Bag', 'Coat']; None: all
EXPORT = False  # also write -rankings.csv
MIXED_PRECISION = False  # compute the network in float16 (GPUs)
XLA = "auto"  # on: XLA compiles the whole forward pass; off: the reductions only
RESUME = None  # run id of an interrupted run to continue, e.g. '2026-11-21-2130'
ENGINE = "local"  # local, or ray: a pool of Ray actors (pip install 'filtag[ray]')
RAY_ADDRESS = None  # with ray: 'auto' or a cluster address; None: a local Ray
RAY_ACTORS = None  # with ray: actors; None: one per GPU, else one per 2 CPUs
RAY_GPUS_PER_ACTOR = None  # with ray: GPUs per actor; None: 1 with GPUs, else 0
# -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with this file's Inputs, overridden by flags in ``argv``."""
    return commands.run(
        "step3",
        argv,
        filtags_file=FILTAGS_FILE,
        k_q=K_Q,
        top=TOP,
        images_dir=IMAGES_DIR,
        split=SPLIT,
        seed_rn=SEED_RN,
        save_dir=SAVE_DIR,
        time_delta=TIME_DELTA,
        batch_size=BATCH_SIZE,
        classes=CLASSES,
        export=EXPORT,
        mixed_precision=MIXED_PRECISION,
        xla=XLA,
        resume=RESUME,
        engine=ENGINE,
        ray_address=RAY_ADDRESS,
        ray_actors=RAY_ACTORS,
        ray_gpus_per_actor=RAY_GPUS_PER_ACTOR,
    )


if __name__ == "__main__":
    raise SystemExit(main())
