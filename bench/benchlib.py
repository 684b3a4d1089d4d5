"""Helpers shared by the benchmark scripts of ``bench/`` (not part of filtag).

The scripts put ``bench/`` on ``sys.path`` by being run from it
(``python bench/bench.py``), so they import this module as ``benchlib``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: The repository root (the scripts run filtag's step scripts from here).
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from filtag import evaluation, steps, tagging  # noqa: E402


def cpu_model() -> str:
    """Return the CPU model named in /proc/cpuinfo (else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def memory_gib() -> float | None:
    """Return the machine's total memory in GiB (/proc/meminfo), None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine_line() -> str:
    """Return one line naming the machine and the versions that were measured."""
    import keras
    import tensorflow as tf

    memory = memory_gib()
    parts = [
        platform.platform(),
        cpu_model(),
        f"{os.cpu_count()} cores",
        f"{memory:.0f} GiB" if memory else "memory unknown",
        "GPU" if tf.config.list_physical_devices("GPU") else "no GPU",
        f"Python {platform.python_version()}",
        f"TensorFlow {tf.__version__}",
        f"Keras {keras.__version__}",
        f"numpy {np.__version__}",
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}",
    ]
    return "Machine: " + ", ".join(parts)


def best_rate(
    work: Callable[[], int], repeats: int, warmup: Callable[[], object] | None = None
) -> float:
    """Return the best images/s of ``repeats`` timed runs of ``work``.

    Args:
        work: one pass; returns the number of images it processed.
        repeats: timed passes (>= 1).
        warmup: run once, untimed, before them (compilation, caches); None:
            one untimed pass of ``work``.
    """
    (warmup or work)()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        n = work()
        rates.append(n / (time.perf_counter() - start))
    return max(rates)


def random_tags(
    filters: Sequence[int], n_classes: int, k_q: Sequence[int]
) -> tuple[list[str], evaluation.TagCounter]:
    """Return class names and step 3's tag counter for random tags.

    The tags are step 2's, of random class activations (seed 0), for every k
    and q of ``k_q``.

    Returns:
        (class names, the :class:`filtag.evaluation.TagCounter` of the tags).
    """
    rng = np.random.default_rng(0)
    names = [f"class{i}" for i in range(n_classes)]
    class_acts = [rng.random((n_classes, f)) for f in filters]
    by_kind = dict(
        zip("kq", tagging.filter_tags(class_acts, names, k_q, k_q), strict=True)
    )
    return names, evaluation.TagCounter(by_kind, names, filters)


def step3_loop(
    probe: Callable,
    batches: Iterable,
    counter: evaluation.TagCounter,
    class_names: list[str],
    output_names: list[str],
    k_q: list[int],
    top: int,
) -> int:
    """Run step 3's loop as ``filtag.steps.step3`` does, without its files.

    The probe over ``batches`` (uint8 images, (batch, h, w, c)), each batch's
    host work (tag counts, the first ``top`` classes of every ranking, top-5) in
    a second thread beside the next forward pass.

    Returns:
        The number of images.
    """
    results = steps._ClassResults(class_names, k_q, top)
    pending, n = None, 0
    with ThreadPoolExecutor(1) as host:
        for images in batches:
            acts, outputs = probe(images)
            if pending is not None:
                pending.result()
                results.partial.clear()
            rows = [0] * len(outputs)
            index = np.arange(n, n + len(outputs))
            pending = host.submit(results.add, rows, rows, probe.split_layers(acts),
                                  outputs, counter, output_names, index)  # fmt: skip
            n += len(outputs)
        if pending is not None:
            pending.result()
    return n


@dataclass(frozen=True)
class ChildRun:
    """What one measured subprocess took."""

    wall_s: float
    peak_rss_bytes: int
    last_line: str
    cpu_s: float  # user + system CPU time of the command


def run_child(command: Sequence[str], log_prefix: Path) -> ChildRun:
    """Run ``command`` from the repository root; return its wall and CPU time, peak RSS.

    The command runs under ``run_measured.py``, which reports the command's own
    ``ru_maxrss`` (started from this process, which may hold GBs, a child's
    figure would start at this process's peak; see that file). The wall time
    is the command's, measured there. Its stdout and stderr go to
    ``<log_prefix>.out`` and ``.err``.

    Raises:
        SystemExit: the command failed (the end of its stderr is shown).
    """
    out, err = (log_prefix.with_name(log_prefix.name + ext) for ext in (".out", ".err"))
    result = log_prefix.with_name(log_prefix.name + ".json")
    launcher = [sys.executable, str(Path(__file__).with_name("run_measured.py"))]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        subprocess.run(
            [*launcher, str(result), *command], cwd=ROOT, stdout=stdout, stderr=stderr
        )
    measured = json.loads(result.read_text()) if result.is_file() else {}
    if measured.get("exit_code") != 0:
        tail = err.read_text(errors="replace")[-2000:]
        raise SystemExit(f"{' '.join(command)} failed ({measured}):\n{tail}")
    lines = out.read_text(errors="replace").strip().splitlines()
    return ChildRun(
        measured["wall_s"],
        measured["maxrss_kib"] * 1024,
        lines[-1] if lines else "",
        measured["cpu_s"],
    )


def mib(n_bytes: float) -> str:
    """Format a byte count in MiB."""
    return f"{n_bytes / 2**20:.0f}"
