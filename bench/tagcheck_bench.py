"""Benchmark the tag check (``tagcheck.py``) beside a plain ``model.predict``.

For each network, steps 1 and 2 run first (untimed) on a folder of images;
then, in this one process:

- **check**: :func:`filtag.tagcheck.check` (k = 5, the last layer, ``--draws``
  random draws): its whole wall time (network loading, tracing, writing); the
  time of its loop over the test images (``meta["seconds"]``: reading them,
  step 1's probe for the hit rates, the ablation); and the time of the
  ablation alone (``meta["ablation_seconds"]``: every row through the masked
  network, its first tracing included), with the rows it ran
  (``meta["forward_rows"]``);
- **predict**: ``model.predict`` over the same test images through the same
  tf.data pipeline (:func:`filtag.data.image_dataset`), best of ``--repeats``
  after a warm-up.

A check runs N (1 + classes) + N * draws rows for N test images (the
unablated pass, each class's tagged set on every image, the random draws on the
class's own images); the table gives its ablation rows per second beside
predict's images per second (1.0: a row costs what predicting an image costs).

Networks: the default CNN on its embedded images (600 test images, 10
classes); VGG16 and MobileNetV2 with random weights (1000 outputs) on
generated 224x224 noise PNGs in folders named by the first 10 ImageNet wnids,
``--images`` per class.

    python bench/tagcheck_bench.py
    python bench/tagcheck_bench.py --networks default --repeats 1   # quick
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import benchlib
import numpy as np
from tabulate import tabulate

from filtag import cli, data, default, labels, models, steps, tagcheck


def noise_images(folder: Path, per_class: int, seed: int = 0) -> Path:
    """Write ``per_class`` 224x224 noise PNGs in each of 10 ImageNet wnid folders."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for wnid in labels.imagenet_wnids()[:10]:
        (folder / wnid).mkdir(parents=True)
        for n in range(per_class):
            pixels = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(folder / wnid / f"{n:03d}.png")
    return folder


def measure(
    network: str, weights: str | None, images: Path, work: Path, args
) -> list[object]:
    """Run steps 1 and 2, then time the check and the plain predict."""
    r1 = steps.step1(network=network, weights=weights, images_dir=images,
                     save_dir=work)  # fmt: skip
    r2 = steps.step2(activations_file=r1.path, k_q="5", save_dir=work)
    start = time.perf_counter()
    result = tagcheck.check(
        filtags_file=r2.path, random_draws=args.draws, batch_size=args.batch_size,
        save_dir=work,
    )  # fmt: skip
    wall = time.perf_counter() - start
    meta = result.load()["meta"]
    net = steps.load_network(network, weights, "conv", "auto", "nearest", False)
    preprocess = models.preprocess_function(net.preprocess)
    test = [images / p for p in r1.load()["test_filenames"]]
    dataset = data.image_dataset(test, net.spec, args.batch_size)

    def predict() -> int:
        n = 0
        for batch, _ in dataset:
            net.model.predict_on_batch(preprocess(batch.numpy().astype(np.float32)))
            n += int(batch.shape[0])
        return n

    rate = benchlib.best_rate(predict, args.repeats)
    rows_rate = meta["forward_rows"] / meta["ablation_seconds"]
    return [
        Path(network).stem if network.endswith(".keras") else network,
        len(test), meta["forward_rows"], f"{wall:.1f}", f"{meta['seconds']:.1f}",
        f"{meta['ablation_seconds']:.1f}", f"{rows_rate:.1f}", f"{rate:.1f}",
        f"**{rows_rate / rate:.2f}**",
    ]  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default="default,VGG16,MobileNetV2")
    parser.add_argument("--images", type=int, default=10, help="per class (noise)")
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cli.setup_logging()
    cli.quiet_tensorflow()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        noise = None
        for network in args.networks.split(","):
            if network == "default":
                files = default.ensure_default()
                rows.append(measure(str(files.model), None, files.images_dir,
                                    work, args))  # fmt: skip
                continue
            noise = noise or noise_images(work / "noise", args.images)
            rows.append(measure(network, "none", noise, work, args))
    headers = [
        "network", "test images", "ablation rows", "check s (all)", "loop s",
        "ablation s", "ablation rows/s", "predict img/s", "rows/s / predict img/s",
    ]  # fmt: skip
    print(benchlib.machine_line())
    print(f"batch {args.batch_size}, {args.draws} random draws, k = 5, last layer\n")
    print(tabulate(rows, headers, tablefmt="github", disable_numparse=True))


if __name__ == "__main__":
    main()
