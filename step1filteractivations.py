"""Step 1 of FilTag: the mean scaled activation of every filter, per class.

The same as ``filtag step1``; ``python step1filteractivations.py --help`` lists
every flag. Example:

    python step1filteractivations.py --network VGG16 --images-dir imagenet/train
    python step1filteractivations.py --network torchvision:resnet18 \
        --images-dir imagenet/train
"""

from __future__ import annotations

from collections.abc import Sequence

from filtag import commands

# --- Inputs: edit here, or override with flags ------------------------------------
NETWORK = "default"  # default (embedded CNN), Keras name or file, torchvision:NAME,
# timm:NAME, FILE.py:FACTORY or package.module:FACTORY (PyTorch)
WEIGHTS = None  # imagenet / none / weights file; None: imagenet, or the file's own
IMAGES_DIR = None  # one sub-folder per class; None: the default's images
SAVE_DIR = "results"
TIME_DELTA = 0  # hours from UTC for the run id
SPLIT = 0.2  # fraction of each class kept for testing (step 3)
SEED_RN = 123
BATCH_SIZE = 32
PREPROCESS = "auto"  # auto, none, mean-std, caffe, tf, torch, or an application name
MEAN = None  # with PREPROCESS = "mean-std": one value or one per channel
STD = None  # with PREPROCESS = "mean-std": one value or one per channel
INTERPOLATION = "auto"  # auto: torchvision's/timm's own, else nearest
IMAGE_SIZE = None  # e.g. 224 or "240,320"; None: the model's own size
CLASS_NAMES = None  # file naming the model's outputs, one per line
LAYERS = "conv"  # conv, name, comma list of layer names, or a regex
EXEMPLARS = 9  # per filter, the train images of largest value kept (0: none)
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
        "step1",
        argv,
        network=NETWORK,
        weights=WEIGHTS,
        images_dir=IMAGES_DIR,
        save_dir=SAVE_DIR,
        time_delta=TIME_DELTA,
        split=SPLIT,
        seed_rn=SEED_RN,
        batch_size=BATCH_SIZE,
        preprocess=PREPROCESS,
        mean=MEAN,
        std=STD,
        interpolation=INTERPOLATION,
        image_size=IMAGE_SIZE,
        class_names=CLASS_NAMES,
        layers=LAYERS,
        exemplars=EXEMPLARS,
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
