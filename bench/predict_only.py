"""A whole process that only runs ``model.predict`` over step 1's train images.

The yardstick of ``families.py``'s whole-process rows: it loads the network as
step 1 does (``filtag.models``), rebuilds step 1's train/test split of
``--images-dir`` and reads the train images through the same tf.data pipeline
(``filtag.data.image_dataset``), with the network's own preprocessing mapped in
tf.data, then ``model.predict`` at ``--batch-size``. It prints the number of
images predicted.

    python bench/predict_only.py --network MobileNetV2 --images-dir DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from filtag import data, models


def main() -> None:
    """Predict step 1's train images of ``--images-dir``; print how many."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--network", required=True)
    parser.add_argument("--weights", default="none")
    parser.add_argument("--images-dir", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--split", type=float, default=0.2)
    parser.add_argument("--seed-rn", type=int, default=123)
    args = parser.parse_args()

    import tensorflow as tf

    model = models.load_network(args.network, args.weights)
    preprocess = models.preprocess_function(
        models.resolve_preprocess("auto", args.network)
    )
    spec = models.image_spec(model)
    split = data.split_images(args.images_dir, args.split, args.seed_rn)
    paths, _ = split.files("train")
    dataset = data.image_dataset(
        [args.images_dir / p for p in paths], spec, args.batch_size
    ).map(lambda images, index: preprocess(tf.cast(images, tf.float32)))
    print(len(model.predict(dataset, verbose=0)))


if __name__ == "__main__":
    main()
