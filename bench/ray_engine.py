"""The Ray engine beside the local one: steps 1 and 3, time and memory (by hand).

    python bench/ray_engine.py --work DIR [--classes 1000 --per-class 2]
        [--size 500x375] [--actors 2] [--steps 1,3]

On the ImageNet-shaped folder of ``bench/imagenet_shape.py`` (generated once
per ``--work``), with MobileNetV2 (random weights, saved once as a ``.keras``
file so that every process and every Ray actor holds the same network), it
runs ``step1filteractivations.py`` and ``step3evaluation.py`` (after one
``step2filtertags.py --k-q 0-25``) as processes, each with ``--engine local``
and ``--engine ray --ray-actors N`` (a local Ray that starts and stops with
the run), interleaved, and prints a markdown table: wall time, images per
second, the driver's peak RSS and the peak of the memory of all the run's
processes together (the driver, Ray's own processes, its workers and actors):
the sum of their PSS (proportional set size: shared pages, e.g. Ray's object
store in ``/dev/shm``, counted once), sampled every 0.5 s.

A smoke test: ``--classes 10 --per-class 4 --size 100x75`` (2 minutes).

``--merge 4224,17056,26560`` instead times only the driver's share of step 1
under Ray, per image, for networks of those filter counts (VGG16,
MobileNetV2, ResNet50): counting each image once (:class:`Settled`) and adding
its row to the float64 class sums and the exemplars' top 9, on random rows of
batches of 32 images, 10 images per class, as they come from the actors.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import imagenet_shape
import psutil
from tabulate import tabulate

#: The network, saved once with random weights (no download needed).
NETWORK = "MobileNetV2"


@dataclass
class Measured:
    """One process: its wall time and memory."""

    step: str
    engine: str
    images: int
    wall_s: float
    driver_peak_mib: float
    total_peak_mib: float
    output: str  # the path the step printed last


def model_file(work: Path) -> Path:
    """Return MobileNetV2 with random weights as a .keras file (made once)."""
    path = work / f"{NETWORK}-random.keras"
    if not path.is_file():
        import keras

        keras.utils.set_random_seed(0)
        keras.applications.MobileNetV2(weights=None).save(path)
    return path


def _tree_memory(root: psutil.Process) -> tuple[float, float]:
    """Return (RSS of ``root``, PSS of ``root`` and all its descendants) in MiB."""
    driver = total = 0.0
    try:
        driver = root.memory_info().rss
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0, 0.0
    for process in processes:
        try:
            total += process.memory_full_info().pss
        except psutil.Error:  # ended between the listing and the reading
            pass
    return driver / 2**20, total / 2**20


def measure(command: list[str], step: str, engine: str, images: int) -> Measured:
    """Run ``command``; sample its process tree's memory every 0.5 s."""
    start = time.perf_counter()
    child = psutil.Popen(command, stdout=subprocess.PIPE, text=True)
    peaks = [0.0, 0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            driver, total = _tree_memory(child)
            peaks[0], peaks[1] = max(peaks[0], driver), max(peaks[1], total)
            done.wait(0.5)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, _ = child.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode})")
    measured = Measured(step, engine, images, wall, *peaks, out.splitlines()[-1])
    print(measured, file=sys.stderr)
    return measured


def merge_rate(n_filters: int, batch_size: int = 32, n_images: int = 6400) -> float:
    """Return the driver's merge time per image in ms (step 1 under Ray)."""
    import numpy as np

    from filtag.activations import ClassSums, Exemplars
    from filtag.ray_engine import Settled

    labels = np.arange(n_images) // 10
    n_classes = int(labels[-1]) + 1
    sums = ClassSums(labels, n_classes, n_filters)
    top = Exemplars(labels, n_filters, 9)
    settled = Settled(labels, np.arange(n_images), n_classes)
    rng = np.random.default_rng(0)
    pool = [rng.random((batch_size, n_filters), np.float32) for _ in range(8)]
    start = time.perf_counter()
    for first in range(0, n_images, batch_size):
        index = np.arange(first, first + batch_size)
        fresh = settled.take(index)
        rows = pool[first // batch_size % len(pool)]
        sums.accumulate(rows[fresh], index[fresh])
        top.add(rows[fresh], index[fresh])
        settled.finished(index)
    return (time.perf_counter() - start) / n_images * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--per-class", type=int, default=2)
    parser.add_argument("--size", default="500x375")
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--split", type=float, default=0.2)
    parser.add_argument("--merge", help="filter counts: time the driver's merge")
    args = parser.parse_args(argv)
    if args.merge:
        for n in map(int, args.merge.split(",")):
            ms = min(merge_rate(n) for _ in range(3))
            print(f"F={n}: {ms:.3f} ms per image, {1000 / ms:,.0f} images/s")
        return 0
    size = tuple(int(x) for x in args.size.split("x"))
    args.work.mkdir(parents=True, exist_ok=True)
    images = imagenet_shape.image_folder(args.work, args.classes, args.per_class, size)
    network = model_file(args.work)
    out = args.work / "ray-runs"
    common = ["--batch-size", args.batch_size, "--xla", "off", "--save-dir", out]
    engines = {
        "local": ["--engine", "local"],
        "ray": ["--engine", "ray", "--ray-actors", args.actors],
    }
    from filtag.data import n_test_images

    n_files = args.classes * args.per_class
    n_test = args.classes * n_test_images(args.per_class, args.split)
    rows = []
    step1 = {}
    for engine, flags in engines.items():
        command = imagenet_shape.python(
            "step1filteractivations.py", "--network", network, "--images-dir",
            images, "--split", args.split, *common, *flags,
        )  # fmt: skip
        step1[engine] = measure(command, "step 1", engine, n_files - n_test)
        rows.append(step1[engine])
    tags = (
        subprocess.run(
            imagenet_shape.python(
                "step2filtertags.py",
                "--activations-file",
                step1["local"].output,
                "--k-q",
                "0-25",
                "--save-dir",
                out,
            ),
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    for engine, flags in engines.items():
        command = imagenet_shape.python(
            "step3evaluation.py", "--filtags-file", tags, *common, *flags
        )
        rows.append(measure(command, "step 3", engine, n_test))
    print(
        tabulate(
            [
                [
                    r.step,
                    r.engine,
                    r.images,
                    f"{r.wall_s:.1f} s",
                    f"{r.images / r.wall_s:.1f}",
                    f"{r.driver_peak_mib:.0f} MiB",
                    f"{r.total_peak_mib:.0f} MiB",
                ]
                for r in rows
            ],
            headers=[
                "step",
                "engine",
                "images",
                "wall time",
                "img/s (whole run)",
                "driver peak RSS",
                "all processes, peak PSS",
            ],
            tablefmt="github",
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
