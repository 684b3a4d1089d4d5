"""Steps 1 and 3's forward pass beside a plain ``model.predict``, per network family.

Run by hand (not in CI). For each network (``keras.applications``, random
weights, 224x224; InceptionV3 at its own 299x299, which filtag builds without
``input_shape``), two parts, printed as markdown tables for BENCHMARKS.md
(progress goes to stderr):

1. In one process, the same random-content JPEGs (224x224) decoded through
   ``filtag.data.image_dataset`` at ``--batch-size``:

   - predict: ``model.predict`` over the pipeline (the network's preprocessing
     mapped in tf.data);
   - probe, ``--xla`` on / off / auto: ``activations.class_sums`` with a
     ``FilterProbe`` (step 1's path; step 3 runs the same forward pass).

   The passes are interleaved (predict, on, off, auto, predict, ...); each
   rate is the best of ``--repeats`` timed passes after one untimed pass each
   (tracing, compilation). Each ratio to predict is given by wall clock and
   by this process's CPU time, which other work on a shared machine disturbs
   less.
2. Whole processes from the shell: ``step1filteractivations.py --weights none
   --batch-size 32 --split 0.001`` (``--xla auto``, the default) on a folder
   of ``--shell-images`` train images (plus one test image per class), against
   ``bench/predict_only.py``, which predicts the same train images through the
   same pipeline. The times include start-up, building the network and
   compilation; interleaved, best of ``--shell-repeats``, by wall clock and
   by the process's CPU time.

    python bench/families.py                       # all seven, about 90 minutes
    python bench/families.py --networks MobileNetV2 --parts 1 --repeats 1
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import benchlib
import keras
import numpy as np
import tensorflow as tf
from tabulate import tabulate

from filtag import activations, data, models

logger = logging.getLogger("bench")

NETWORKS = (
    "VGG16",
    "ResNet50",
    "InceptionV3",
    "MobileNetV2",
    "EfficientNetB0",
    "DenseNet121",
    "ConvNeXtTiny",
)

#: Step 1's split in part 2: one test image per class, all others are read.
SHELL_SPLIT = 0.001

#: Classes of the image folders.
N_CLASSES = 8


def write_jpegs(folder: Path, per_class: int) -> None:
    """Write ``N_CLASSES`` class folders of ``per_class`` random 224x224 JPEGs.

    Kept when the folder already holds them (seed 0, the same every time).
    """
    from PIL import Image

    done = folder / ".complete"
    if done.is_file() and done.read_text() == str(per_class):
        return
    shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(0)
    for label in range(N_CLASSES):
        class_dir = folder / f"class{label}"
        class_dir.mkdir(parents=True)
        for n in range(per_class):
            pixels = rng.integers(0, 256, (224, 224, 3), np.uint8)
            Image.fromarray(pixels).save(class_dir / f"{n:04d}.jpg", quality=90)
    done.write_text(str(per_class))


# ------------------------------------------------------------ part 1: one process


def predict_pass(
    model, preprocess: Callable, dataset: tf.data.Dataset
) -> Callable[[], int]:
    """Return one pass of the plain ``model.predict`` over the pipeline."""
    inputs = dataset.map(lambda images, index: preprocess(tf.cast(images, tf.float32)))
    return lambda: len(model.predict(inputs, verbose=0))


def probe_pass(
    probe: activations.FilterProbe, dataset: tf.data.Dataset, n_images: int
) -> Callable[[], int]:
    """Return one pass of step 1's computation (``class_sums``, one class)."""
    labels = np.zeros(n_images, np.int64)

    def work() -> int:
        sums = activations.ClassSums(labels, 1, sum(probe.filters_per_layer))
        return int(activations.class_sums(probe, dataset, sums).counts.sum())

    return work


def interleaved_rates(
    passes: dict[str, Callable[[], int]], repeats: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Time each pass in turn ``repeats`` times; return its best rates.

    Each pass runs once untimed first (tracing, compilation).

    Returns:
        (images per wall-clock second, images per second of this process's
        CPU time): the second is less disturbed by other work on the machine.
    """
    for name, work in passes.items():
        start = time.perf_counter()
        work()
        logger.info("  %s: first pass %.1f s", name, time.perf_counter() - start)
    rates = dict.fromkeys(passes, 0.0)
    cpu_rates = dict.fromkeys(passes, 0.0)
    for _ in range(repeats):
        for name, work in passes.items():
            start, cpu = time.perf_counter(), time.process_time()
            n = work()
            rate = n / (time.perf_counter() - start)
            rates[name] = max(rates[name], rate)
            cpu_rates[name] = max(cpu_rates[name], n / (time.process_time() - cpu))
            logger.info("  %s: %.1f img/s", name, rate)
    return rates, cpu_rates


def part1_row(network: str, paths: list[Path], batch: int, repeats: int) -> list[str]:
    """Measure one network in this process; return its table row."""
    model = models.load_network(network, "none")
    layers = models.select_layers(model)
    preprocess = models.preprocess_function(models.resolve_preprocess("auto", network))
    spec = models.image_spec(model)
    dataset = data.image_dataset(paths, spec, batch)
    probes = {
        mode: activations.FilterProbe(model, layers, preprocess, mode, batch)
        for mode in ("on", "off", "auto")
    }
    passes = {"predict": predict_pass(model, preprocess, dataset)}
    for mode, probe in probes.items():
        passes[mode] = probe_pass(probe, dataset, len(paths))
    logger.info("%s, %d images, batch %d", network, len(paths), batch)
    rates, cpu_rates = interleaved_rates(passes, repeats)
    row = [f"{network} {spec.height}x{spec.width}", str(len(layers))]
    row.append(f"{rates['predict']:.1f}")
    for mode in probes:
        wall = rates[mode] / rates["predict"]
        cpu = cpu_rates[mode] / cpu_rates["predict"]
        row.append(f"{rates[mode]:.1f} ({wall:.2f}x; CPU **{cpu:.2f}x**)")
    row.append(probes["auto"].xla_used)
    keras.backend.clear_session()
    return row


def part1(args: argparse.Namespace, folder: Path) -> str:
    """Measure part 1 for every network; return the markdown table."""
    paths = sorted(folder.glob("*/*.jpg"))[: args.images]
    rows = [
        part1_row(network, paths, args.batch_size, args.repeats)
        for network in args.networks
    ]
    headers = ["network", "layers", "predict img/s"]
    headers += [f"probe, xla {mode} img/s (/ predict)" for mode in ("on", "off")]
    headers += ["probe, xla auto img/s (/ predict)", "auto chose"]
    return tabulate(rows, headers, tablefmt="github", disable_numparse=True)


# -------------------------------------------------------- part 2: whole processes


def part2_row(
    network: str, folder: Path, work: Path, batch: int, repeats: int
) -> list[str]:
    """Time step 1 and predict_only.py as whole processes; return the table row.

    Each time is the best of ``repeats`` runs, by wall clock and by the
    process's CPU time (user + system).
    """
    common = ["--network", network, "--images-dir", str(folder)]
    common += ["--batch-size", str(batch), "--split", str(SHELL_SPLIT)]
    out = work / "step1-out"
    step1 = ["step1filteractivations.py", *common, "--save-dir", str(out)]
    commands = {
        "step 1": [sys.executable, *step1, "--weights", "none"],
        "predict": [sys.executable, "bench/predict_only.py", *common],
    }
    wall = dict.fromkeys(commands, float("inf"))
    cpu = dict.fromkeys(commands, float("inf"))
    for _ in range(repeats):
        for name, command in commands.items():
            run = benchlib.run_child(command, work / f"{network}-{name[:4]}")
            shutil.rmtree(out, ignore_errors=True)
            logger.info("  %s %s: %.1f s", network, name, run.wall_s)
            wall[name] = min(wall[name], run.wall_s)
            cpu[name] = min(cpu[name], run.cpu_s)
    row = [network]
    for times in (wall, cpu):
        ratio = times["predict"] / times["step 1"]
        row += [f"{times['predict']:.1f}", f"{times['step 1']:.1f}", f"**{ratio:.2f}**"]
    return row


def part2(args: argparse.Namespace, folder: Path, work: Path) -> str:
    """Measure part 2 for every network; return the markdown table."""
    rows = [
        part2_row(network, folder, work, args.batch_size, args.shell_repeats)
        for network in args.networks
    ]
    headers = ["network"]
    for what in ("wall", "CPU"):
        headers += [f"predict_only.py {what} s", f"step 1 {what} s"]
        headers.append(f"predict / step 1 ({what})")
    return tabulate(rows, headers, tablefmt="github", disable_numparse=True)


# ------------------------------------------------------------------------ main


def parse_args() -> argparse.Namespace:
    """Return the command-line arguments."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--networks", default=",".join(NETWORKS), help="comma list")
    add("--parts", default="1,2", help="parts to run: 1, 2 or 1,2")
    add("--images", type=int, default=96, help="images per pass of part 1")
    add("--batch-size", type=int, default=32)
    add("--repeats", type=int, default=3, help="timed passes of part 1")
    add("--shell-images", type=int, default=256, help="train images of part 2")
    add("--shell-repeats", type=int, default=2, help="runs of each process")
    add("--work-dir", type=Path, default=Path("/tmp/filtag-families"))
    args = parser.parse_args()
    args.networks = [name.strip() for name in args.networks.split(",")]
    args.parts = {int(part) for part in args.parts.split(",")}
    if args.shell_images % N_CLASSES:
        parser.error(f"--shell-images: a multiple of {N_CLASSES}")
    return args


def main() -> None:
    """Run the parts asked for; print their tables and the machine line."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args = parse_args()
    work = args.work_dir
    # per class: the train images, plus the one test image SHELL_SPLIT leaves out
    per_class = max(args.shell_images, args.images) // N_CLASSES + 1
    folder = work / "images"
    write_jpegs(folder, per_class)
    start = time.perf_counter()
    print(benchlib.machine_line(), end="\n\n", flush=True)
    if 1 in args.parts:
        title = f"In one process, batch {args.batch_size}, {args.images} images"
        print(f"{title}\n\n{part1(args, folder)}\n", flush=True)
    if 2 in args.parts:
        title = f"Whole processes, {args.shell_images} train images"
        print(f"{title}\n\n{part2(args, folder, work)}\n", flush=True)
    print(f"whole benchmark: {(time.perf_counter() - start) / 60:.1f} min")
    print(f"command: python {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
