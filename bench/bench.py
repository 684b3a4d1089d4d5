"""Benchmark filtag's steps 1-3: throughput, wall time and peak memory.

One command measures three parts and prints one markdown table per part, and
the machine line, ready for BENCHMARKS.md (progress goes to stderr):

1. Images/s, in this one process, for VGG16 (random weights, 224x224, 1000
   classes) and the default CNN (28x28, 10 classes) at each batch size. All read
   the same images through the same tf.data pipeline
   (:func:`filtag.data.image_dataset`):

   - predict: ``model.predict`` over the pipeline (the network alone);
   - step 1: ``activations.class_sums`` with a ``FilterProbe`` (in-graph
     reductions, per-class float64 sums);
   - step 3: step 3's loop (``filtag.steps.step3`` without its files): the
     forward pass, and each batch's host work (the active filters, tag counts
     and the first 20 classes of the rankings of every image for every k and q;
     random tags) in a second thread beside the next forward pass, for
     ``--k-q`` and for ``--k-q-full``;
   - naive step 1 (once per network): the original FilTag seed's way, one
     ``model.predict`` per image on a multi-output model returning the full
     feature maps of every selected layer, the maps min-max scaled and averaged
     in numpy, summed per class.

   Each rate is the best of ``--repeats`` timed passes after one warm-up pass.
2. Step 2: wall time and peak RSS of the whole ``step2filtertags.py`` process on
   the ImageNet-sized synthetic step-1 file (``make_synthetic_step1.py``), for
   each ``--step2-k-q``.
3. Step 1: peak RSS of the whole ``step1filteractivations.py`` process on the
   default CNN for folders of ``--step1-images`` Fashion-MNIST test images
   (``--split 0.001``: all but one image per class are train images).

Parts 2 and 3 run the scripts under ``run_measured.py``, so that a child's peak
RSS is its own and not this process's (see there).

Run from the repository root; the full measurement (about 15 minutes on 2 cores):

    python bench/bench.py

A quick check of the script (about 3 minutes): ``python bench/bench.py --images
16 --vgg-images 4 --repeats 1 --step2-k-q 1,5 0-2 --step1-images 100 200``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import benchlib
import keras
import numpy as np
import tensorflow as tf
from make_synthetic_step1 import FILE_NAME, write_synthetic_step1
from tabulate import tabulate

from filtag import activations, data, default, evaluation, models, params

logger = logging.getLogger("bench")

#: Step 1's split in part 3: the smallest test fraction, one test image per class.
STEP1_SPLIT = 0.001


@dataclass(frozen=True)
class Network:
    """A network of part 1 and how it is measured."""

    label: str
    network: str
    weights: str | None
    n_images: int
    n_classes: int


@dataclass
class Loaded:
    """A loaded network: the model, its preprocessing, layers and image spec."""

    model: keras.Model
    preprocess: Callable
    layers: list[keras.layers.Layer]
    spec: data.ImageSpec


def load(net: Network) -> Loaded:
    """Load ``net``'s model with its automatic preprocessing and conv layers."""
    model = models.load_network(net.network, net.weights)
    preprocess = models.preprocess_function(
        models.resolve_preprocess("auto", net.network)
    )
    return Loaded(
        model, preprocess, models.select_layers(model), models.image_spec(model)
    )


# ----------------------------------------------------------------- part 1: img/s


def predict_pass(loaded: Loaded, dataset: tf.data.Dataset) -> Callable[[], int]:
    """Return one pass of the plain ``model.predict`` over the pipeline."""

    def work() -> int:
        inputs = dataset.map(
            lambda images, index: loaded.preprocess(tf.cast(images, tf.float32))
        )
        return len(loaded.model.predict(inputs, verbose=0))

    return work


def sorted_labels(n_images: int, n_classes: int) -> np.ndarray:
    """Return sorted class labels that spread ``n_images`` over ``n_classes``."""
    return np.arange(n_images) * n_classes // n_images


def step1_pass(
    probe: activations.FilterProbe,
    dataset: tf.data.Dataset,
    n_images: int,
    n_classes: int,
) -> Callable[[], int]:
    """Return one pass of step 1's computation (``class_sums``)."""
    labels = sorted_labels(n_images, n_classes)

    def work() -> int:
        sums = activations.ClassSums(labels, n_classes, sum(probe.filters_per_layer))
        return int(activations.class_sums(probe, dataset, sums).counts.sum())

    return work


def step3_pass(
    probe: activations.FilterProbe,
    dataset: tf.data.Dataset,
    tags: tuple[list[str], evaluation.TagCounter],
    k_q: list[int],
    n_outputs: int,
) -> Callable[[], int]:
    """Return one pass of step 3's loop: the probe, and each batch's host work
    (tag counts, rankings, top-5) in a second thread, as ``filtag.steps.step3``
    runs it, without writing files."""
    names, counter = tags
    output_names = [f"out{i}" for i in range(n_outputs)]

    def work() -> int:
        batches = (images for images, _ in dataset)
        return benchlib.step3_loop(
            probe, batches, counter, names, output_names, k_q, 20
        )

    return work


def naive_image_means(maps: list[np.ndarray]) -> np.ndarray:
    """The seed's host work for one image: scale each layer, average each map.

    Args:
        maps: per layer, the full output for one image, (1, h, w, filters).

    Returns:
        float64, shape (total filters,): the scaled filter means, layers in order.
    """
    means = []
    for layer_output in maps:
        scaled = layer_output.copy()  # the seed's act_raw.copy()
        low, high = scaled.min(), scaled.max()
        scaled -= low  # MinMaxScaler(copy=False) over the whole layer output
        scaled *= 1 / (high - low) if high > low else 0
        means.append(scaled.mean(axis=(0, 1, 2)))
    return np.concatenate(means).astype(np.float64)


def naive_pass(
    maps_model: keras.Model,
    loaded: Loaded,
    paths: list[Path],
    n_classes: int,
    limit: int | None = None,
) -> Callable[[], int]:
    """Return one pass of the seed's step 1: one ``predict`` per image, numpy.

    Args:
        maps_model: the network with the full output of each selected layer.
        loaded: the network (its preprocessing and image spec).
        paths: the images, read one at a time through the same pipeline.
        n_classes: classes the images are spread over.
        limit: stop after that many images (a short warm-up).
    """
    dataset = data.image_dataset(paths, loaded.spec, 1)
    labels = sorted_labels(len(paths), n_classes)

    def work() -> int:
        sums, counts = None, np.zeros(n_classes, np.int64)
        for images, index in dataset.take(limit or -1):
            x = loaded.preprocess(images.numpy().astype(np.float32))
            maps = maps_model.predict(x, verbose=0)
            means = naive_image_means(maps if isinstance(maps, list) else [maps])
            sums = np.zeros((n_classes, len(means))) if sums is None else sums
            label = labels[int(index[0])]
            sums[label] += means
            counts[label] += 1
        return int(counts.sum())

    return work


def measure_batch(
    loaded: Loaded,
    net: Network,
    paths: list[Path],
    batch: int,
    configs: dict[str, tuple[list[int], tuple]],
    repeats: int,
) -> dict[str, float]:
    """Return images/s of predict, step 1 and each step-3 ``configs`` at ``batch``."""
    dataset = data.image_dataset(paths, loaded.spec, batch)
    probe = activations.FilterProbe(loaded.model, loaded.layers, loaded.preprocess)
    n_outputs = int(loaded.model.output_shape[-1])
    passes = {
        "predict": predict_pass(loaded, dataset),
        "step 1": step1_pass(probe, dataset, len(paths), net.n_classes),
    }
    for name, (k_q, tags) in configs.items():
        passes[name] = step3_pass(probe, dataset, tags, k_q, n_outputs)
    rates = {}
    for name, work in passes.items():
        start = time.perf_counter()
        rates[name] = benchlib.best_rate(work, repeats)
        seconds = time.perf_counter() - start
        logger.info("%s, batch %d, %s: %.1f img/s", net.label, batch, name, rates[name])
        logger.info("(measured in %.0f s)", seconds)
    return rates


def measure_naive(
    loaded: Loaded, net: Network, paths: list[Path], repeats: int
) -> float:
    """Return images/s of the naive per-image step 1 (warm-up: 2 images)."""
    maps_model = keras.Model(
        loaded.model.inputs, [layer.output for layer in loaded.layers]
    )
    start = time.perf_counter()
    rate = benchlib.best_rate(
        naive_pass(maps_model, loaded, paths, net.n_classes),
        repeats,
        naive_pass(maps_model, loaded, paths, net.n_classes, limit=2),
    )
    logger.info("%s, naive step 1: %.1f img/s", net.label, rate)
    logger.info("(measured in %.0f s)", time.perf_counter() - start)
    return rate


def part1_rows(
    net: Network,
    paths: list[Path],
    batches: list[int],
    step3_k_q: dict[str, list[int]],
    repeats: int,
) -> tuple[list[list[str]], str]:
    """Return part 1's rows of one network (per batch size, then naive) and a note.

    The naive row's ratio is to the plain predict at batch 1 (else the first
    batch size); the note compares step 1 at the largest batch with it.
    """
    loaded = load(net)
    filters = [int(layer.output.shape[-1]) for layer in loaded.layers]
    configs = {
        name: (k_q, benchlib.random_tags(filters, net.n_classes, k_q))
        for name, k_q in step3_k_q.items()
    }
    rows, all_rates = [], {}
    for batch in batches:
        rates = all_rates[batch] = measure_batch(
            loaded, net, paths, batch, configs, repeats
        )
        row = [net.label, str(batch), str(len(paths)), f"{rates['predict']:.1f}"]
        for name, rate in rates.items():
            if name != "predict":
                row += [f"{rate:.1f}", f"**{rate / rates['predict']:.2f}**"]
        rows.append(row)
    naive = measure_naive(loaded, net, paths, repeats)
    reference = all_rates.get(1, all_rates[batches[0]])["predict"]
    rows.append(
        [net.label, "naive step 1: 1 predict per image", str(len(paths))]
        + [f"{reference:.1f}", f"{naive:.1f}", f"**{naive / reference:.2f}**"]
        + ["", ""] * len(configs)
    )
    largest = max(batches)
    note = (
        f"{net.label}: step 1 at batch {largest} is "
        f"{all_rates[largest]['step 1'] / naive:.1f}x the naive step 1."
    )
    keras.backend.clear_session()
    return rows, note


def spread(items: list[Path], n: int) -> list[Path]:
    """Return ``n`` of the sorted ``items``, evenly spread (all classes), in order."""
    picks = np.linspace(0, len(items) - 1, min(n, len(items))).round().astype(int)
    return [items[i] for i in picks]


def part1(args: argparse.Namespace) -> str:
    """Measure part 1 (images/s) in this process; return its markdown table."""
    files = default.ensure_default()
    images = sorted(files.images_dir.glob("*/*.png"))
    vgg = "VGG16 224x224 (random weights)"
    nets = [
        Network("default CNN 28x28", str(files.model), None, args.images, 10),
        Network(vgg, "VGG16", "none", args.vgg_images, 1000),
    ]
    step3_k_q = {f"step 3, k_q {args.k_q}": params.whole_numbers(args.k_q)}
    if args.k_q_full != "none":
        step3_k_q[f"step 3, k_q {args.k_q_full}"] = params.whole_numbers(args.k_q_full)
    rows, notes = [], []
    for net in nets:
        net_paths = spread(images, net.n_images)
        net_rows, note = part1_rows(
            net, net_paths, args.batch_sizes, step3_k_q, args.repeats
        )
        rows += net_rows
        notes.append(note)
    headers = ["network", "batch", "images", "predict img/s"]
    for name in ["step 1", *step3_k_q]:
        headers += [f"{name} img/s", f"{name} / predict"]
    table = tabulate(rows, headers, tablefmt="github", disable_numparse=True)
    return table + "\n\n" + "\n".join(notes)


# ------------------------------------------------------- part 2: step 2's process


def part2(args: argparse.Namespace, work: Path) -> str:
    """Run step 2 on the synthetic ImageNet-sized file; return the markdown table."""
    synth = work / "synth"
    step1_file = synth / FILE_NAME
    if not step1_file.is_file():
        logger.info("writing the synthetic step-1 file in %s", synth)
        write_synthetic_step1(synth)
    rows = []
    for k_q in args.step2_k_q:
        out = work / "step2-out"
        shutil.rmtree(out, ignore_errors=True)
        command = [sys.executable, "step2filtertags.py", "--activations-file"]
        command += [str(step1_file), "--k-q", k_q, "--save-dir", str(out)]
        run = benchlib.run_child(command, work / f"step2-{k_q}")
        written = Path(run.last_line)
        size = written.stat().st_size if written.is_file() else 0
        rss = benchlib.mib(run.peak_rss_bytes)
        logger.info("step 2, k_q %s: %.2f s, peak RSS %s MiB", k_q, run.wall_s, rss)
        n_rules = 2 * len(params.whole_numbers(k_q))
        rows.append(
            [
                "1000 classes x 4224 filters (VGG16 layers), random",
                k_q,
                str(n_rules),
                f"**{run.wall_s:.2f}**",
                benchlib.mib(run.peak_rss_bytes),
                benchlib.mib(size),
            ]
        )
        shutil.rmtree(out, ignore_errors=True)
    headers = ["input", "k_q", "rules", "wall time s (whole process)"]
    headers += ["peak RSS MiB", "-vars.pkl MiB"]
    return tabulate(rows, headers, tablefmt="github", disable_numparse=True)


# ------------------------------------------------------- part 3: step 1's memory


def write_images(folder: Path, n_images: int) -> None:
    """Write ``n_images`` Fashion-MNIST test images as PNGs in 10 class folders.

    The first ``n_images // 10`` test images of each class; kept when the
    folder holds them already.
    """
    from PIL import Image

    per_class = n_images // 10
    done = folder / ".complete"
    if done.is_file() and done.read_text() == str(per_class):
        return
    shutil.rmtree(folder, ignore_errors=True)
    _, (x_test, y_test) = default.load_fashion_mnist()
    for label, name in enumerate(default.LABEL_NAMES):
        class_dir = folder / name
        class_dir.mkdir(parents=True)
        for n, image in enumerate(x_test[y_test == label][:per_class]):
            Image.fromarray(image, mode="L").save(class_dir / f"{n:04d}.png")
    done.write_text(str(per_class))


def part3(args: argparse.Namespace, work: Path) -> str:
    """Run step 1 on folders of each ``--step1-images``; return the markdown table."""
    model = default.ensure_default().model
    rows, first_rss = [], None
    for n_images in args.step1_images:
        folder = work / f"fmnist-{n_images}"
        write_images(folder, n_images)
        per_class = n_images // 10
        n_train = 10 * (per_class - data.n_test_images(per_class, STEP1_SPLIT))
        out = work / "step1-out"
        shutil.rmtree(out, ignore_errors=True)
        command = [sys.executable, "step1filteractivations.py", "--network"]
        command += [str(model), "--images-dir", str(folder), "--save-dir", str(out)]
        command += ["--split", str(STEP1_SPLIT)]
        run = benchlib.run_child(command, work / f"step1-{n_images}")
        shutil.rmtree(out, ignore_errors=True)
        first_rss = first_rss or run.peak_rss_bytes
        rss = benchlib.mib(run.peak_rss_bytes)
        logger.info(
            "step 1, %d images: %.1f s, peak RSS %s MiB", n_images, run.wall_s, rss
        )
        rows.append(
            [
                f"default CNN, {10 * per_class} images",
                str(n_train),
                f"{run.wall_s:.1f}",
                benchlib.mib(run.peak_rss_bytes),
                f"**{run.peak_rss_bytes / first_rss:.3f}**",
            ]
        )
    headers = ["input", "train images read", "wall time s (whole process)"]
    headers += ["peak RSS MiB", "RSS / first row's"]
    return tabulate(rows, headers, tablefmt="github", disable_numparse=True)


# ------------------------------------------------------------------------ main


def parse_args() -> argparse.Namespace:
    """Return the command-line arguments."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--parts", default="1,2,3", help="parts to run, e.g. 1 or 2,3")
    add("--images", type=int, default=512, help="default-CNN images per pass")
    add("--vgg-images", type=int, default=32, help="VGG16 images per pass")
    add("--repeats", type=int, default=3, help="timed passes after the warm-up")
    add("--batch-sizes", default="1,8,32", help="comma list")
    add("--k-q", default="1,5,25", help="step 3's k and q values")
    add("--k-q-full", default="0-25", help="a second step-3 set; 'none': skip")
    add("--step2-k-q", nargs="+", default=["0-25", "0-100"], help="part 2's k_q")
    sizes = "part 3's folder sizes, multiples of 10 up to 10000"
    add("--step1-images", nargs="+", type=int, default=[1000, 10000], help=sizes)
    add("--work-dir", type=Path, default=Path("/tmp/filtag-bench"), help="scratch")
    args = parser.parse_args()
    args.parts = params.whole_numbers(args.parts, minimum=1)
    args.batch_sizes = params.whole_numbers(args.batch_sizes, minimum=1)
    if any(n % 10 or not 10 <= n <= 10000 for n in args.step1_images):
        parser.error("--step1-images: multiples of 10 between 10 and 10000")
    return args


def main() -> None:
    """Run the parts asked for and print their tables (stdout) for BENCHMARKS.md."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args = parse_args()
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    print(benchlib.machine_line(), end="\n\n", flush=True)
    parts = {
        1: ("Part 1: images/s beside a plain model.predict", part1, (args,)),
        2: ("Part 2: step 2 on an ImageNet-sized input", part2, (args, work)),
        3: ("Part 3: step 1's peak RSS against the image count", part3, (args, work)),
    }
    for number in args.parts:
        title, run, run_args = parts[number]
        print(f"{title}\n\n{run(*run_args)}\n", flush=True)
    print(f"whole benchmark: {(time.perf_counter() - start) / 60:.1f} min")
    print(f"command: python {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
