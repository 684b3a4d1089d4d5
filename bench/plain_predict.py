"""The baseline of the ImageNet-shape benchmark: a plain ``model.predict`` process.

Reads the same images as a step (step 1's train images, or step 3's test
images: the same folder, split and seed) through the same tf.data pipeline
(:func:`filtag.data.image_dataset`) and runs ``model.predict`` over them: what
the network alone costs, start-up and decoding included. Usage, from the
repository root:

    python bench/plain_predict.py --network MobileNetV2 --weights none \\
        --images-dir DIR --part test --batch-size 32

Prints one line: ``predict: N images in S s (R img/s after the first batch)``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from filtag import cli, data, models


def parse_args() -> argparse.Namespace:
    """Return the command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="MobileNetV2")
    parser.add_argument("--weights", default="none")
    parser.add_argument("--images-dir", type=Path, required=True)
    parser.add_argument("--part", choices=("train", "test"), default="test")
    parser.add_argument("--split", type=float, default=0.2)
    parser.add_argument("--seed-rn", type=int, default=123)
    parser.add_argument("--batch-size", type=int, default=32)
    return parser.parse_args()


def main() -> None:
    """Predict over the chosen images; print the count and the time."""
    args = parse_args()
    cli.quiet_tensorflow()
    import tensorflow as tf

    model = models.load_network(args.network, args.weights)
    preprocess = models.preprocess_function(
        models.resolve_preprocess("auto", args.network)
    )
    split = data.split_images(args.images_dir, args.split, args.seed_rn)
    paths, _ = split.files(args.part)
    dataset = data.image_dataset(
        [args.images_dir / p for p in paths], models.image_spec(model), args.batch_size
    ).map(lambda images, index: preprocess(tf.cast(images, tf.float32)))
    start = time.perf_counter()
    first = None
    n = 0
    for images in dataset:
        n += len(model.predict_on_batch(images))
        if first is None:
            first = time.perf_counter(), n
    end = time.perf_counter()
    steady = (n - first[1]) / (end - first[0]) if n > first[1] else float("nan")
    print(
        f"predict: {n} images in {end - start:.1f} s "
        f"({steady:.1f} img/s after the first batch)"
    )


if __name__ == "__main__":
    main()
