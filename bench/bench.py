"""Benchmark filtag's steps 1 and 3 against a plain ``model.predict`` of the network.

All three read the same images through the same tf.data pipeline
(:func:`filtag.data.image_dataset`) at the same batch size, in one process:

- predict: ``model.predict`` over the pipeline (the network alone);
- step 1: the in-graph reductions and the per-class float64 sums;
- step 3: one forward pass giving predictions and filter activations, then the
  active filters, tag counts and rankings of every image for every k and q
  (tags from random class activations, ``--k-q`` values, ImageNet's 1000
  classes for VGG16, the 10 Fashion-MNIST classes for the default CNN).

Each figure is the best of ``--repeats`` timed passes after one warm-up pass.
Run from the repository root (the default CNN is made on first use):

    python bench/bench.py --images 256 --repeats 3 --batch-sizes 32
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
import tensorflow as tf
from tabulate import tabulate

from filtag import activations, cli, data, default, evaluation, models, tagging


def best_rate(work: Callable[[], int], repeats: int) -> float:
    """Run ``work`` once to warm up, then ``repeats`` times; return best images/s."""
    work()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        n = work()
        rates.append(n / (time.perf_counter() - start))
    return max(rates)


def random_tags(filters: list[int], n_classes: int, k_q: list[int]) -> dict:
    """Return step 3's stacked tag matrices for tags of random class activations."""
    rng = np.random.default_rng(0)
    names = [f"class{i}" for i in range(n_classes)]
    index = {name: i for i, name in enumerate(names)}
    class_acts = [rng.random((n_classes, f)) for f in filters]
    by_kind = dict(
        zip("kq", tagging.filter_tags(class_acts, names, k_q, k_q), strict=True)
    )
    return names, {
        kind: {
            value: evaluation.stack_tags(
                [evaluation.tag_matrix(t, index) for t in tags[value]]
            )
            for value in k_q
        }
        for kind, tags in by_kind.items()
    }


def measure(network: str, weights: str | None, paths: list[Path], batch: int,
            n_classes: int, k_q: list[int], repeats: int) -> list[float]:  # fmt: skip
    """Return images/s of (predict, step 1, step 3) for one network and batch size."""
    model = models.load_network(network, weights)
    preprocess = models.preprocess_function(models.resolve_preprocess("auto", network))
    probe = activations.FilterProbe(model, models.select_layers(model), preprocess)
    dataset = data.image_dataset(paths, models.image_spec(model), batch)
    labels = np.zeros(len(paths), np.int64)
    names, tags = random_tags(probe.filters_per_layer, n_classes, k_q)
    output_names = [f"out{i}" for i in range(int(model.output_shape[-1]))]

    def predict() -> int:
        inputs = dataset.map(
            lambda images, index: preprocess(tf.cast(images, tf.float32))
        )
        return len(model.predict(inputs, verbose=0))

    def step1() -> int:
        _, counts = activations.class_sums(probe, dataset, labels, 1)
        return int(counts.sum())

    def step3() -> int:
        results = [evaluation.ClassResults("class0", k_q)]
        for images, index in dataset:
            rows = [0] * len(index)
            evaluation.evaluate_batch(
                probe, images, rows, names, output_names, tags, results, warn=False
            )
        return len(results[0].y)

    return [best_rate(work, repeats) for work in (predict, step1, step3)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=256, help="images per pass")
    parser.add_argument("--vgg-images", type=int, default=64, help="images for VGG16")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", default="32", help="comma list, e.g. 1,8,32")
    parser.add_argument("--k-q", default="0-25", help="step 3's k and q values")
    args = parser.parse_args()
    k_q = cli.whole_numbers(args.k_q)

    files = default.ensure_default()
    all_images = sorted(files.images_dir.glob("*/*.png"))
    paths = all_images[:: max(1, len(all_images) // args.images)][: args.images]
    rows = []
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        for label, network, weights, n, n_classes in (
            ("default CNN 28x28", str(files.model), None, args.images, 10),
            ("VGG16 224x224", "VGG16", "none", args.vgg_images, 1000),
        ):
            rates = measure(
                network, weights, paths[:n], batch, n_classes, k_q, args.repeats
            )
            predict, step1, step3 = rates
            rows.append(
                [label, batch, n]
                + [f"{rate:.1f}" for rate in rates]
                + [f"{step1 / predict:.2f}", f"{step3 / predict:.2f}"]
            )
    print(
        f"{platform.machine()}, python {platform.python_version()}, tensorflow "
        f"{tf.__version__}; step 3 with k_q = {args.k_q}"
    )
    headers = ["network", "batch", "images", "predict img/s", "step 1 img/s"]
    headers += ["step 3 img/s", "step 1 / predict", "step 3 / predict"]
    print(tabulate(rows, headers, tablefmt="github"))


if __name__ == "__main__":
    main()
