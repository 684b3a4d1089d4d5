"""Step 1 of FilTag: the mean scaled activation of every filter, per class.

Feeds the train images of each class through the network. For every selected
layer of every image, the layer output is scaled into [0, 1] by min-max over the
whole layer output, each feature map is averaged to one number, and these are
averaged over the images of the class: one filter activation per (class, layer,
filter). The train/test split (per class, deterministic in --seed-rn) is the one
step 3 rebuilds.

Writes, in --save-dir, <run id>-QFA-<network>-vars.pkl with labels_id,
train_filenames, test_filenames, filter_act_<i> per class and meta (see
-vars-info.txt), and prints that path as its last line.

Example:
    python step1filteractivations.py --network VGG16 --images-dir imagenet/train
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from filtag import cli, pipeline

# --- Inputs: edit here, or override with flags ------------------------------------
NETWORK = "default/fashion_mnist_cnn.keras"  # keras.applications name or model file
WEIGHTS = None  # imagenet / none / weights file; None: imagenet, or the file's own
IMAGES_DIR = "default/images"  # one sub-folder per class
SAVE_DIR = "results"
SPLIT = 0.2  # fraction of each class kept for testing (step 3)
SEED_RN = 123
TIME_DELTA = 0  # hours from UTC for the run id
BATCH_SIZE = 32
PREPROCESS = "auto"  # auto, none, caffe, tf, torch, or an application name
INTERPOLATION = "nearest"
CLASS_NAMES = None  # file naming the model's outputs, one per line
LAYERS = "conv"  # conv, name, comma list of layer names, or a regex
MIXED_PRECISION = False  # compute the network in float16 (GPUs)
RESUME = None  # run id of an interrupted run to continue, e.g. "2026-11-21-2130"
# -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Return the inputs: this file's Inputs block, overridden by flags in ``argv``."""
    return cli.parse(
        __doc__,
        argv,
        network=NETWORK,
        weights=WEIGHTS,
        images_dir=IMAGES_DIR,
        save_dir=SAVE_DIR,
        split=SPLIT,
        seed_rn=SEED_RN,
        time_delta=TIME_DELTA,
        batch_size=BATCH_SIZE,
        preprocess=PREPROCESS,
        interpolation=INTERPOLATION,
        class_names=CLASS_NAMES,
        layers=LAYERS,
        mixed_precision=MIXED_PRECISION,
        resume=RESUME,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(pipeline.step1, parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
