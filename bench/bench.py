"""Benchmark filtag's step 1 against a plain ``model.predict`` of the same network.

Both read the same images through the same tf.data pipeline
(:func:`filtag.data.image_dataset`) at the same batch size, in one process; each
figure is the best of ``--repeats`` timed passes after one warm-up pass.

Run from the repository root (the default CNN must exist: ``make demo`` first):

    python bench/bench.py --images 256 --repeats 3
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from tabulate import tabulate

from filtag import activations, data, default, models


def best_rate(work: Callable[[], int], repeats: int) -> float:
    """Run ``work`` once to warm up, then ``repeats`` times; return best images/s."""
    work()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        n = work()
        rates.append(n / (time.perf_counter() - start))
    return max(rates)


def measure(
    network: str, weights: str | None, paths: list[Path], batch: int, repeats: int
):
    """Return (predict images/s, step-1 images/s) for one network and batch size."""
    model = models.load_network(network, weights)
    spec = models.image_spec(model)
    preprocess = models.preprocess_function(models.resolve_preprocess("auto", network))
    probe = activations.FilterProbe(model, models.select_layers(model), preprocess)
    dataset = data.image_dataset(paths, spec, batch)
    labels = np.zeros(len(paths), np.int64)

    def plain_predict() -> int:
        inputs = dataset.map(lambda images, index: preprocess(tf_float(images)))
        return len(model.predict(inputs, verbose=0))

    def step1() -> int:
        _, counts = activations.class_sums(probe, dataset, labels, 1)
        return int(counts.sum())

    return best_rate(plain_predict, repeats), best_rate(step1, repeats)


def tf_float(images):
    """Cast a uint8 image batch to float32 (what the probe does first)."""
    import tensorflow as tf

    return tf.cast(images, tf.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=256, help="images per pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", default="32", help="comma list, e.g. 1,8,32")
    args = parser.parse_args()

    files = default.ensure_default()
    all_images = sorted(files.images_dir.glob("*/*.png"))
    paths = all_images[:: max(1, len(all_images) // args.images)][: args.images]
    rows = []
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        for label, network, weights, n in (
            ("default CNN 28x28", str(files.model), None, len(paths)),
            ("VGG16 224x224 (random weights)", "VGG16", "none", min(len(paths), 64)),
        ):
            predict, step1 = measure(network, weights, paths[:n], batch, args.repeats)
            rows.append(
                [
                    label,
                    batch,
                    n,
                    f"{predict:.1f}",
                    f"{step1:.1f}",
                    f"{step1 / predict:.2f}",
                ]
            )
    print(
        f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
        f"python {platform.python_version()}"
    )
    print(
        tabulate(
            rows,
            ["network", "batch", "images", "predict img/s", "step 1 img/s", "ratio"],
            tablefmt="github",
        )
    )


if __name__ == "__main__":
    main()
