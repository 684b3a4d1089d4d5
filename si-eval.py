"""Explain single images by the tags of their most active filters (after step 2).

The same as ``filtag explain``; ``python si-eval.py --help`` lists every flag.
Examples:

    python si-eval.py --filtags-file results/...-TF-VGG16-vars.pkl --class-name Bag
    python si-eval.py --filtags-file results/...-TF-VGG16-vars.pkl \\
        --image my_cat.jpg --kind q --value 5 --html
"""

from __future__ import annotations

from collections.abc import Sequence

from filtag import commands

# --- Inputs: edit here, or override with flags ------------------------------------
FILTAGS_FILE = None  # step 2's ...-TF-<network>-vars.pkl
CLASS_NAME = None  # explain this class's test images ...
IMAGE = None  # ... or this one image file
KIND = "k"  # k: the k most active filters; q: the q % most active
VALUE = None  # the k or q value; None: 5 if step 2 has it, else its smallest
HTML = False  # also write the explanation of IMAGE as an HTML page
CARDS_PAGE = None  # with HTML: a tag page (filTagsvis.py) whose filter cards it links
IMAGES_DIR = None  # None: the folder step 1 read
SPLIT = None  # None: step 1's
SEED_RN = None  # None: step 1's
BATCH_SIZE = 32
XLA = "auto"  # on: XLA compiles the whole forward pass; off: the reductions only
SAVE_DIR = "results"
TIME_DELTA = 0  # hours from UTC for the run id
NETWORK = None  # only for a step-2 file of the original FilTag scripts: its network
WEIGHTS = None  # ... its weights
LAYERS = None  # ... its layers (None: the original's 'conv' in the layer name)
PREPROCESS = "auto"  # ... its preprocessing
CLASS_NAMES = None  # ... a file naming its outputs, when not ImageNet's
# -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with this file's Inputs, overridden by flags in ``argv``."""
    return commands.run(
        "explain",
        argv,
        filtags_file=FILTAGS_FILE,
        class_name=CLASS_NAME,
        image=IMAGE,
        kind=KIND,
        value=VALUE,
        html=HTML,
        cards_page=CARDS_PAGE,
        images_dir=IMAGES_DIR,
        split=SPLIT,
        seed_rn=SEED_RN,
        batch_size=BATCH_SIZE,
        xla=XLA,
        save_dir=SAVE_DIR,
        time_delta=TIME_DELTA,
        network=NETWORK,
        weights=WEIGHTS,
        layers=LAYERS,
        preprocess=PREPROCESS,
        class_names=CLASS_NAMES,
    )


if __name__ == "__main__":
    raise SystemExit(main())
