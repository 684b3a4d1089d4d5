"""Show the filter tags of step 2 as an interactive web page.

The same as ``filtag vis``; ``python filTagsvis.py --help`` lists every flag.
Example:

    python filTagsvis.py --filtags-file results/...-TF-VGG16-vars.pkl --kind k --value 5
"""

from __future__ import annotations

from collections.abc import Sequence

from filtag import commands

# --- Inputs: edit here, or override with flags ------------------------------------
FILTAGS_FILE = None  # step 2's ...-TF-<network>-vars.pkl
KIND = "k"  # k: the k most active filters; q: the q % most active
VALUE = 5  # the k or q value; step 2 must have computed it
VIEW_LAYERS = None  # layer names or indices, e.g. 'conv3,conv4' or '0,2'; None: last 4
IMAGES_DIR = None  # the exemplar images' folder; None: the folder step 1 read
SAVE_DIR = "results"
TIME_DELTA = 0  # hours from UTC for the run id
# -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with this file's Inputs, overridden by flags in ``argv``."""
    return commands.run(
        "vis",
        argv,
        filtags_file=FILTAGS_FILE,
        kind=KIND,
        value=VALUE,
        view_layers=VIEW_LAYERS,
        images_dir=IMAGES_DIR,
        save_dir=SAVE_DIR,
        time_delta=TIME_DELTA,
    )


if __name__ == "__main__":
    raise SystemExit(main())
