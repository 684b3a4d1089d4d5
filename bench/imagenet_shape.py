"""The ImageNet-shaped benchmark: steps 1-4 as whole processes on 1000 wnid folders.

Run by hand, not in CI (the full run takes hours on 2 CPU cores). It

1. generates an ImageNet-shaped folder (:func:`generate`): one folder per
   ImageNet wnid (``filtag.labels.imagenet_wnids()``), ``--per-class`` JPEGs
   each, ``--size`` pixels (default 500x375, about ImageNet's mean), class-
   dependent smooth colour fields with per-image texture so that the files
   and their decoding cost about what ImageNet's do (the mean file size is
   printed), and the classes differ for the network;
2. runs ``step1filteractivations.py``, ``step2filtertags.py``,
   ``step3evaluation.py`` and ``step4hitrates.py`` on it, each as its own
   process under ``run_measured.py``, and ``plain_predict.py`` (a plain
   ``model.predict`` over the same tf.data pipeline) on the images of steps 1
   and 3, as baselines;
3. prints a markdown table: per process its wall time, peak RSS, bytes written
   (the kernel's ``write_bytes`` of the process and its children, from
   ``wait4``'s ``ru_oublock``: every byte handed to the file system, temporary
   files and journals that were removed afterwards included) and the bytes its
   new files take on disk afterwards (``st_blocks``), step 3's per test image.

Each table of ``BENCHMARKS.md`` section 5 is one command (from the repository
root; ``--work`` on a disk, not tmpfs, for the bytes written)::

    # the chain, 1000 classes x 2 images (1000 train, 1000 test images)
    python bench/imagenet_shape.py chain --work /data/bench --xla on
    python bench/imagenet_shape.py chain --work /data/bench   # --xla auto: off on a CPU
    # step 3's memory and rate against the number of test images: 1k and 10k
    python bench/imagenet_shape.py flat --work /data/bench
    # decoding the generated JPEGs: per thread, the pipeline, threads for a GPU
    python bench/imagenet_shape.py decode --work /data/bench

``--xla`` is passed to steps 1 and 3. A quick smoke
test (2 minutes): ``... chain --work /tmp/b --classes 10 --per-class 4 --size
100x75``. The folders are generated once per ``--work`` and parameters and
reused; a step left out of ``--steps`` takes the newest file of an earlier run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import benchlib
import numpy as np
from PIL import Image
from tabulate import tabulate

from filtag import labels

#: JPEG quality of the generated images (ImageNet's files are mostly 75-95).
JPEG_QUALITY = 90

#: Per-image texture: standard deviation of the pixel noise (0-255 scale); with
#: 500x375 images it gives files of about 95 KB (ImageNet's mean: ~110 KB).
TEXTURE = 20.0


# -------------------------------------------------------------------- the images


def class_image(wnid_index: int, image_index: int, size: tuple[int, int]) -> Image:
    """Return one generated image of a class (deterministic).

    A class is a smooth colour field (a 4x3 grid of random colours, bicubic
    upsampled); each image shifts and scales it and adds a coarse and a fine
    random texture.

    Args:
        wnid_index: the class's index, seeds its colours.
        image_index: the image's index within the class, seeds its variation.
        size: (width, height) in pixels.

    Returns:
        an RGB image of ``size``.
    """
    width, height = size
    base = np.random.default_rng([0, wnid_index]).integers(0, 256, (3, 4, 3))
    rng = np.random.default_rng([1, wnid_index, image_index])
    field = Image.fromarray(base.astype(np.uint8)).resize(size, Image.BICUBIC)
    pixels = np.asarray(field, np.float32) * rng.uniform(0.7, 1.1)
    pixels = np.roll(pixels, rng.integers(0, width // 4), axis=1)
    coarse = rng.normal(0, 24, (height // 16 + 1, width // 16 + 1, 3))
    coarse = np.repeat(np.repeat(coarse, 16, axis=0), 16, axis=1)[:height, :width]
    fine = rng.standard_normal((height, width, 3), np.float32) * TEXTURE
    return Image.fromarray(np.clip(pixels + coarse + fine, 0, 255).astype(np.uint8))


def generate(
    folder: Path, n_classes: int, per_class: int, size: tuple[int, int]
) -> Path:
    """Write the ImageNet-shaped folder once (reused when complete).

    Args:
        folder: where to write: ``folder/<wnid>/<wnid>_<i>.JPEG``.
        n_classes: the first ``n_classes`` ImageNet wnids (1000: all).
        per_class: images per class.
        size: (width, height) of each image.

    Returns:
        ``folder``.
    """
    done = folder / ".complete"
    if done.is_file():
        return folder
    wnids = labels.imagenet_wnids()[:n_classes]

    def write(job: tuple[int, int]) -> None:
        c, i = job
        path = folder / wnids[c] / f"{wnids[c]}_{i}.JPEG"
        if not path.is_file():
            image = class_image(c, i, size)
            tmp = path.with_suffix(".tmp")
            image.save(tmp, "JPEG", quality=JPEG_QUALITY)
            tmp.rename(path)

    for wnid in wnids:
        (folder / wnid).mkdir(parents=True, exist_ok=True)
    jobs = [(c, i) for c in range(n_classes) for i in range(per_class)]
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(write, jobs))
    done.write_text(json.dumps({"classes": n_classes, "per_class": per_class}))
    return folder


def image_folder(work: Path, n_classes: int, per_class: int, size: tuple) -> Path:
    """Return the generated folder for these parameters (generating it once)."""
    name = f"images-{n_classes}x{per_class}-{size[0]}x{size[1]}"
    return generate(work / name, n_classes, per_class, size)


def mean_file_kib(folder: Path) -> float:
    """Return the mean size of the folder's JPEGs in KiB."""
    sizes = [p.stat().st_size for p in folder.glob("*/*.JPEG")]
    return sum(sizes) / len(sizes) / 1024


# ------------------------------------------------------------ measured processes


@dataclass
class Measured:
    """One whole process of the benchmark and what it cost.

    Attributes:
        label: what ran (``step 1``, ``predict (test images)``, ...).
        images: the images it read (0 for steps 2 and 4).
        wall_s: wall time, start-up included.
        peak_rss: peak resident memory, bytes.
        written: bytes handed to the file system (``write_bytes``).
        disk: bytes the files it left take on disk (``st_blocks``).
        size: the same files' sizes (``st_size``).
        output: the path it printed last (its result file), or "".
        command: the command line.
    """

    label: str
    images: int
    wall_s: float
    peak_rss: int
    written: int
    disk: int
    size: int
    output: str
    command: list[str]


def _files(folder: Path) -> dict[Path, tuple[int, int]]:
    """Return {file: (bytes on disk, size)} below ``folder``."""
    found = {}
    for path in folder.rglob("*"):
        if path.is_file():
            stat = path.stat()
            found[path] = (stat.st_blocks * 512, stat.st_size)
    return found


def measure(
    label: str, command: list[str], save_dir: Path, images: int = 0
) -> Measured:
    """Run ``command`` from the repository root under ``run_measured.py``.

    Its output and measurements go to ``save_dir/../logs/``; the files it
    leaves in ``save_dir`` are counted.

    Args:
        label: the table's name for it.
        command: the command line.
        save_dir: the folder it writes into.
        images: the images it reads, for the rates.

    Raises:
        SystemExit: the command failed (the end of its stderr is shown).
    """
    save_dir.mkdir(parents=True, exist_ok=True)
    logs = save_dir.parent / "logs"
    logs.mkdir(exist_ok=True)
    log = logs / label.replace(" ", "_").replace("/", "_")
    before = _files(save_dir)
    launcher = [sys.executable, str(Path(__file__).with_name("run_measured.py"))]
    print(f"$ {' '.join(command)}", file=sys.stderr, flush=True)
    out, err = log.with_suffix(".out"), log.with_suffix(".err")
    with out.open("wb") as stdout, err.open("wb") as stderr:
        subprocess.run(
            [*launcher, str(log.with_suffix(".json")), *command],
            cwd=benchlib.ROOT,
            stdout=stdout,
            stderr=stderr,
        )
    measured = json.loads(log.with_suffix(".json").read_text())
    if measured["exit_code"] != 0:
        tail = err.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{' '.join(command)} failed ({measured}):\n{tail}")
    new = {p: sizes for p, sizes in _files(save_dir).items() if p not in before}
    lines = out.read_text(errors="replace").strip().splitlines()
    return Measured(
        label,
        images,
        measured["wall_s"],
        measured["maxrss_kib"] * 1024,
        measured["write_bytes"],
        sum(disk for disk, _ in new.values()),
        sum(size for _, size in new.values()),
        lines[-1] if lines else "",
        command,
    )


# -------------------------------------------------------------------- the chain


@dataclass(frozen=True)
class Setup:
    """The parameters shared by the benchmark's processes."""

    work: Path
    network: str
    weights: str
    classes: int
    per_class: int
    size: tuple[int, int]
    split: float
    batch_size: int
    k_q: str
    xla: str = "auto"

    @property
    def name(self) -> str:
        """A folder name for the runs of these parameters."""
        w, h = self.size
        return (
            f"{self.network}-{self.classes}x{self.per_class}-{w}x{h}-"
            f"split{self.split}-b{self.batch_size}-kq{self.k_q}"
            + ("" if self.xla == "auto" else f"-xla{self.xla}")
        )


def python(script: str, *args: object) -> list[str]:
    """Return the command running ``script`` (repository-relative) with ``args``."""
    return [sys.executable, script, *map(str, args)]


def latest_output(folder: Path, tag: str) -> str:
    """Return the newest ``-<tag>-...-vars.pkl`` in ``folder`` (an earlier run's).

    Raises:
        SystemExit: there is none (run the step first).
    """
    found = sorted(folder.glob(f"*-{tag}-*-vars.pkl"))
    if not found:
        raise SystemExit(f"no {tag} file in {folder}; run that step first (--steps)")
    return str(found[-1])


def run_chain(setup: Setup, steps: set[str], predict: bool) -> list[Measured]:
    """Run the chosen steps (and plain predicts) as processes; return what each cost.

    Args:
        setup: the parameters.
        steps: among "1", "2", "3", "4"; a step left out takes the newest
            result of an earlier run of the same parameters.
        predict: also run the plain predict over step 1's and step 3's images.
    """
    from filtag import data

    images = image_folder(setup.work, setup.classes, setup.per_class, setup.size)
    split = data.split_images(images, setup.split, 123)
    n_train = sum(map(len, split.train))
    n_test = sum(map(len, split.test))
    run = setup.work / "runs" / setup.name
    net = ("--network", setup.network, "--weights", setup.weights)
    baseline = ("bench/plain_predict.py", *net, "--images-dir", images,
                "--split", setup.split, "--batch-size", setup.batch_size)  # fmt: skip
    rows = []
    if "1" in steps:
        if predict:
            command = python(*baseline, "--part", "train")
            rows.append(measure("predict (train images)", command, run / "p1", n_train))
        command = python("step1filteractivations.py", *net, "--xla", setup.xla,
                         "--images-dir", images,
                         "--split", setup.split, "--batch-size", setup.batch_size,
                         "--save-dir", run / "step1")  # fmt: skip
        rows.append(measure("step 1", command, run / "step1", n_train))
    if "2" in steps:
        command = python("step2filtertags.py", "--activations-file",
                         latest_output(run / "step1", "QFA"), "--k-q", setup.k_q,
                         "--save-dir", run / "step2")  # fmt: skip
        rows.append(measure("step 2", command, run / "step2"))
    if "3" in steps:
        if predict:
            command = python(*baseline, "--part", "test")
            rows.append(measure("predict (test images)", command, run / "p3", n_test))
        command = python("step3evaluation.py", "--xla", setup.xla, "--filtags-file",
                         latest_output(run / "step2", "TF"), "--batch-size",
                         setup.batch_size, "--save-dir", run / "step3")  # fmt: skip
        rows.append(measure("step 3", command, run / "step3", n_test))
    if "4" in steps:
        command = python("step4hitrates.py", "--eval-file",
                         latest_output(run / "step3", "E"), "--save-dir",
                         run / "step4")  # fmt: skip
        rows.append(measure("step 4", command, run / "step4"))
    return rows


def size_text(n_bytes: float) -> str:
    """Format a byte count: KiB below 1 MiB, MiB below 10 GiB, else GiB."""
    if n_bytes < 2**20:
        return f"{n_bytes / 2**10:.1f} KiB"
    if n_bytes < 10 * 2**30:
        return f"{n_bytes / 2**20:.0f} MiB"
    return f"{n_bytes / 2**30:.1f} GiB"


def chain_table(rows: list[Measured]) -> str:
    """Return the markdown table of the measured processes."""
    headers = ["process", "images", "wall time", "img/s (whole process)",
               "peak RSS", "written", "on disk", "on disk per image"]  # fmt: skip
    table = []
    for row in rows:
        rate = f"{row.images / row.wall_s:.1f}" if row.images else ""
        per_image = size_text(row.disk / row.images) if row.images and row.disk else ""
        table.append([
            row.label, row.images or "", f"{row.wall_s:.1f} s", rate,
            size_text(row.peak_rss), size_text(row.written),
            size_text(row.disk) if row.disk else "",
            per_image,
        ])  # fmt: skip
    return tabulate(table, headers, tablefmt="github", disable_numparse=True)


def ratios(rows: list[Measured]) -> list[str]:
    """Return lines comparing each step's img/s with its plain predict's."""
    by_label = {row.label: row for row in rows}
    lines = []
    for step, baseline in (("step 1", "predict (train images)"),
                           ("step 3", "predict (test images)")):  # fmt: skip
        if step in by_label and baseline in by_label:
            ratio = by_label[baseline].wall_s / by_label[step].wall_s
            lines.append(f"{step} / plain predict, whole processes: {ratio:.2f}x")
    return lines


# ------------------------------------------- step 3 against the number of images

#: The two folders of the memory table, (images per class, split): 1 train
#: image per class each, and 1 or 10 test images per class.
FLAT_SIZES = ((2, 0.2), (11, 0.9))


def derived_step1(step1_file: str, setup: Setup) -> Path:
    """Write a step-1 file for ``setup``'s folder from another folder's step-1 file.

    The class activations (hence step 2's tags) are those of ``step1_file``;
    the images folder, split, file lists and split digest are ``setup``'s, so
    that step 3 reads ``setup``'s test images. It saves running step 1 again
    (the forward pass of the train images) just to get tags.

    Returns:
        the new step-1 file, in the runs folder of ``setup``.
    """
    from filtag import artifacts, data, provenance

    images = image_folder(setup.work, setup.classes, setup.per_class, setup.size)
    split = data.split_images(images, setup.split, 123)
    variables = artifacts.load_vars(step1_file)
    meta = variables.pop("meta")
    variables["train_filenames"] = split.files("train")[0]
    variables["test_filenames"] = split.files("test")[0]
    variables["meta"] = {
        **meta,
        "images_dir": str(images.resolve()),
        "split": setup.split,
        "split_sha256": provenance.split_digest(split.train, split.test),
        "images_per_class": dict(
            zip(split.classes, map(len, split.train), strict=True)
        ),
        "derived_from": step1_file,
    }
    folder = setup.work / "runs" / setup.name / "step1"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / Path(step1_file).name
    return artifacts.write_vars(path, variables, f"derived from {step1_file}")


def run_flat(setup: Setup) -> tuple[str, list[str]]:
    """Step 3 (and a plain predict) on 1 and on 10 test images per class.

    The first folder runs steps 1 and 2 (unless an earlier run left their
    files); the second gets a step-1 file derived from the first's
    (:func:`derived_step1`: the same tags) and runs step 2 on it.

    Returns:
        (markdown table, derived lines).
    """
    first, second = (
        Setup(**{**setup.__dict__, "per_class": per_class, "split": split})
        for per_class, split in FLAT_SIZES
    )
    steps_done = {
        step
        for step, folder, tag in (("1", "step1", "QFA"), ("2", "step2", "TF"))
        if list((setup.work / "runs" / first.name / folder).glob(f"*-{tag}-*-vars.pkl"))
    }
    run_chain(first, {"1", "2"} - steps_done, predict=False)
    rows = [run_chain(first, {"3"}, predict=True)]
    derived_step1(
        latest_output(setup.work / "runs" / first.name / "step1", "QFA"), second
    )
    run_chain(second, {"2"}, predict=False)
    rows.append(run_chain(second, {"3"}, predict=True))
    table = []
    for predict, step3 in rows:
        table.append(
            [
                step3.images,
                f"{predict.wall_s:.1f} s",
                size_text(predict.peak_rss),
                f"{step3.wall_s:.1f} s",
                size_text(step3.peak_rss),
                size_text(step3.disk / step3.images),
            ]
        )
    headers = ["test images", "predict wall", "predict peak RSS", "step 3 wall",
               "step 3 peak RSS", "step 3 on disk per image"]  # fmt: skip
    (p1, s1), (p2, s2) = rows
    extra = s2.images - s1.images
    step3_ms = (s2.wall_s - s1.wall_s) / extra * 1000
    predict_ms = (p2.wall_s - p1.wall_s) / extra * 1000
    lines = [
        f"step 3 peak RSS, {s2.images} / {s1.images} test images: "
        f"{s2.peak_rss / s1.peak_rss:.3f}",
        f"per extra test image (start-up cancels out): step 3 {step3_ms:.1f} ms, "
        f"predict {predict_ms:.1f} ms; step 3 / predict throughput "
        f"{predict_ms / step3_ms:.2f}x",
    ]
    return tabulate(table, headers, tablefmt="github", disable_numparse=True), lines


# ------------------------------------------------------------------- decoding


def decode_parts(files: list[Path]) -> dict[str, float]:
    """Return one thread's CPU milliseconds per image for each part of decoding.

    The parts of :func:`filtag.data.load_image` at 224x224 RGB: ``open``
    (Pillow parses the header in Python: holds the GIL), ``decode`` and
    ``resize`` (C code that releases the GIL), ``array`` (the numpy copy), and
    ``load_image`` (all of it, as the pipeline calls it).
    """
    from filtag import data

    spec = data.ImageSpec(224, 224, "rgb", "nearest")
    parts = dict.fromkeys(("open", "decode", "resize", "array"), 0.0)
    for path in files:
        start = time.thread_time()
        with Image.open(path) as img:
            opened = time.thread_time()
            img.load()
            decoded = time.thread_time()
            small = img.resize((224, 224), Image.Resampling.NEAREST)
            resized = time.thread_time()
            np.asarray(small, np.uint8)
            done = time.thread_time()
        parts["open"] += opened - start
        parts["decode"] += decoded - opened
        parts["resize"] += resized - decoded
        parts["array"] += done - resized
    start = time.thread_time()
    for path in files:
        data.load_image(str(path), spec)
    parts["load_image"] = time.thread_time() - start
    return {name: 1000 * seconds / len(files) for name, seconds in parts.items()}


def numpy_function_ms(n: int = 2000) -> float:
    """Return the CPU ms per element of a ``tf.numpy_function`` that does nothing.

    What the pipeline adds to each image in Python (holding the GIL): the call
    into Python and the conversions.
    """
    import tensorflow as tf

    blank = np.zeros((224, 224, 3), np.uint8)

    def nothing(path: bytes) -> np.ndarray:
        return blank

    ds = tf.data.Dataset.from_tensor_slices(tf.constant([b"x"] * n))
    ds = ds.map(
        lambda p: tf.numpy_function(nothing, [p], tf.uint8, stateful=False),
        num_parallel_calls=1,
    ).batch(32)
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for _ in ds:
            pass
        best = min(best, time.process_time() - start)
    return 1000 * best / n


def pipeline_rate(files: list[Path], threads: int, repeats: int = 3) -> float:
    """Return the best images/s of ``filtag.data.image_dataset`` with ``threads``."""
    from filtag import data

    spec = data.ImageSpec(224, 224, "rgb", "nearest")
    dataset = data.image_dataset(files, spec, 32, threads=threads)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        n = sum(len(batch) for batch, _ in dataset)
        best = max(best, n / (time.perf_counter() - start))
    return best


#: The parts of :func:`decode_parts` in the table, and their headers.
PARTS = ("open", "decode", "resize", "array", "load_image")
PART_HEADERS = ("open (GIL)", "decode", "resize", "to numpy (GIL)", "load_image",
                "numpy_function (GIL)")  # fmt: skip

#: How busy the decode threads may be kept in the derivation of their number.
DECODE_LOAD = 0.7

#: Assumed GPU forward rates, images/s at batch 128 in mixed precision on an
#: A100/H100-class GPU (not measured here): (network, low, high).
GPU_RATES = (("VGG16", 1000, 1500), ("ResNet50", 2500, 3000))


def run_decode(setup: Setup, n_files: int, thread_counts: list[int]) -> str:
    """Measure decoding and derive the decode threads a GPU run needs.

    Returns:
        markdown: the per-part table, the pipeline's rates, the derivation.
    """
    folder = image_folder(setup.work, setup.classes, setup.per_class, setup.size)
    files = sorted(folder.glob("*/*.JPEG"))[:n_files]
    decode_parts(files[:20])  # warm the page cache
    parts = decode_parts(files)
    overhead = numpy_function_ms()
    gil = parts["open"] + parts["array"] + overhead
    per_image = parts["load_image"] + overhead
    lines = [
        f"{len(files)} JPEGs of {setup.size[0]}x{setup.size[1]} "
        f"(mean {mean_file_kib(folder):.0f} KiB), to 224x224 RGB; one thread's CPU "
        "ms per image:",
        "",
        tabulate(
            [[f"{parts[k]:.3f}" for k in PARTS] + [f"{overhead:.3f}"]],
            PART_HEADERS,
            tablefmt="github",
            disable_numparse=True,
        ),
        "",
        tabulate(
            [[t, f"{pipeline_rate(files, t):.0f}"] for t in thread_counts],
            ["decode threads", "image_dataset img/s"],
            tablefmt="github",
            disable_numparse=True,
        ),
        "",
        f"per image: {per_image:.2f} ms of CPU, of which about {gil:.2f} ms hold "
        f"the GIL: one thread decodes about {1000 / per_image:.0f} img/s; the GIL "
        f"caps any number of threads at about {1000 / gil:.0f} img/s.",
    ]
    lines.append(
        f"Decode threads for a GPU rate R: R x {per_image:.2f} ms / "
        f"{DECODE_LOAD:.0%} (threads kept {DECODE_LOAD:.0%} busy, for the GIL's "
        "hand-overs and the other work of the host):"
    )
    for network, low, high in GPU_RATES:
        need = [math.ceil(r * per_image / 1000 / DECODE_LOAD) for r in (low, high)]
        near = " (near the GIL's cap)" if high > 0.8 * 1000 / gil else ""
        lines.append(
            f"- {network} at {low}-{high} img/s (assumed GPU rate): "
            f"{need[0]}-{need[1]} decode threads{near}"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------ main


def parse_args() -> argparse.Namespace:
    """Return the command-line arguments."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("table", choices=("chain", "flat", "decode"))
    parser.add_argument("--work", type=Path, required=True,
                        help="folder for the images and the runs (reused)")  # fmt: skip
    parser.add_argument("--network", default="MobileNetV2")
    parser.add_argument("--weights", default="none")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--per-class", type=int, default=2)
    parser.add_argument("--size", default="500x375", help="WIDTHxHEIGHT")
    parser.add_argument("--split", type=float, default=0.2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--k-q", default="0-25")
    parser.add_argument("--steps", default="1,2,3,4", help="chain: which steps")
    parser.add_argument("--xla", choices=("auto", "on", "off"), default="auto",
                        help="steps 1 and 3: their --xla")  # fmt: skip
    parser.add_argument("--no-predict", action="store_true",
                        help="chain: leave out the plain predicts")  # fmt: skip
    parser.add_argument("--decode-files", type=int, default=500)
    parser.add_argument("--threads", default="1,2,4,8,16",
                        help="decode: thread counts to time")  # fmt: skip
    return parser.parse_args()


def main() -> None:
    """Run one table's measurements and print it (markdown) with the machine line."""
    args = parse_args()
    from filtag import cli

    cli.quiet_tensorflow()
    width, height = map(int, args.size.split("x"))
    setup = Setup(args.work.resolve(), args.network, args.weights, args.classes,
                  args.per_class, (width, height), args.split, args.batch_size,
                  args.k_q, args.xla)  # fmt: skip
    print(benchlib.machine_line(), end="\n\n")
    print(f"$ python bench/imagenet_shape.py {' '.join(sys.argv[1:])}\n")
    if args.table == "chain":
        rows = run_chain(setup, set(args.steps.split(",")), not args.no_predict)
        folder = image_folder(setup.work, setup.classes, setup.per_class, setup.size)
        print(f"{setup.classes} classes x {setup.per_class} JPEGs of {args.size} "
              f"(mean {mean_file_kib(folder):.0f} KiB), split {setup.split}, "
              f"{setup.network} (--weights {setup.weights}), batch "
              f"{setup.batch_size}, step 2 --k-q {setup.k_q}, probe "
              f"--xla {setup.xla}\n")  # fmt: skip
        print(chain_table(rows), end="\n\n")
        print("\n".join(ratios(rows)), end="\n\n")
        for row in rows:
            print(f"- {row.label}: `{' '.join(row.command[1:])}`")
    elif args.table == "flat":
        table, lines = run_flat(setup)
        print(table, end="\n\n")
        print("\n".join(lines))
    else:
        threads = [int(t) for t in args.threads.split(",")]
        print(run_decode(setup, args.decode_files, threads))


if __name__ == "__main__":
    main()
